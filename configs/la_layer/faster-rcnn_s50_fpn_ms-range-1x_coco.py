# LA-layer paper, COCO (Table 3) baseline: Faster R-CNN, ResNeSt-50-FPN, ms-range 1x.
# mmdet's ResNeSt backbone as its configs/resnest/ ship it (weights, RGB normalisation, SyncBN
# with norm_eval=False) in the detector of the other rows (mmdet's resnest configs also put
# SyncBN and a 4conv1fc box head in the detector; the other rows have neither; see README).
_base_ = ['./faster-rcnn_r50_fpn_ms-range-1x_coco.py']
model = dict(
    data_preprocessor=dict(
        mean=[123.68, 116.779, 103.939], std=[58.393, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        type='ResNeSt',
        stem_channels=64,
        depth=50,
        radix=2,
        reduction_factor=4,
        avg_down_stride=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest50')))
