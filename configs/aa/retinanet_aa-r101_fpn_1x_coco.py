# AA paper, Table 5 row AA-ResNet-101 RetinaNet, mmdet's standard 1x setting.
_base_ = ['./retinanet_aa-r50_fpn_1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='checkpoints/aa-r101_in1k_mmattn.pth')))
