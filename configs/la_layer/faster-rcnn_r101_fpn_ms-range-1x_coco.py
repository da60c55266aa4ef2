# LA-layer paper, COCO (Table 3) baseline: Faster R-CNN, ResNet-101-FPN, ms-range 1x.
_base_ = ['./faster-rcnn_r50_fpn_ms-range-1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='torchvision://resnet101')))
