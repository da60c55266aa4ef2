# MRLA paper, COCO: Faster R-CNN, MRLA-light ResNet-101-FPN, 1x.
_base_ = ['./faster-rcnn_mrla-light-r50_fpn_1x_coco.py']
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mrla-light-r101_in1k.pth')))
