# LA-layer paper, COCO (Table 3) baseline: Faster R-CNN, ResNet-50-FPN, 1x.
# Setting of Sec. 4.2 (after ResNeSt, Zhang et al. 2022): the shorter side is sampled from the
# range [640, 800] for every training image (mmdet's "ms-range", as its ResNeSt configs); 1x
# schedule, single-scale (1333, 800) testing. Everything else is mmdet's Faster R-CNN, shared by
# every row of Table 3 (frozen_stages=1; BN frozen, norm_eval=True, except in mmdet's ResNeSt),
# so the rows differ only in the backbone.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
