# LA-layer paper, COCO (Table 3) baseline: Cascade R-CNN, ResNet-101-FPN, ms-range 1x.
_base_ = ['./cascade-rcnn_r50_fpn_ms-range-1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='torchvision://resnet101')))
