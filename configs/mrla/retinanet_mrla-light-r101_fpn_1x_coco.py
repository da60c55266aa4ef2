# MRLA paper, COCO: RetinaNet (lr 0.01 for batch 16, as mmdet's and the official MRLA config), MRLA-light ResNet-101-FPN, 1x.
_base_ = ['./retinanet_mrla-light-r50_fpn_1x_coco.py']
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mrla-light-r101_in1k.pth')))
