# LA-layer paper, COCO (Table 3) baseline: Faster R-CNN, ResNeXt-50 (32x4d)-FPN, ms-range 1x.
_base_ = ['./faster-rcnn_r50_fpn_ms-range-1x_coco.py']
model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=50,
        groups=32,
        base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d')))
