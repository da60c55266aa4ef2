# LA-layer paper, COCO (Table 3) baseline: Faster R-CNN, ResNeXt-101 (32x4d)-FPN, ms-range 1x.
_base_ = ['./faster-rcnn_x50-32x4d_fpn_ms-range-1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='open-mmlab://resnext101_32x4d')))
