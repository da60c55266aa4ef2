# LA-layer paper, COCO (Table 3) baseline: Cascade R-CNN, ResNeSt-101-FPN, ms-range 1x.
_base_ = ['./cascade-rcnn_s50_fpn_ms-range-1x_coco.py']
model = dict(backbone=dict(stem_channels=128, depth=101,
                           init_cfg=dict(checkpoint='open-mmlab://resnest101')))
