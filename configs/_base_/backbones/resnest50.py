# mmdet's ResNeSt-50 as its configs/resnest/ ship it (weights, RGB normalisation, SyncBN with
# norm_eval=False), a baseline of the LA-layer paper's Table 3 (mmdet's resnest configs also put
# SyncBN and a 4conv1fc box head in the detector; the other rows have neither; see README).
backbone = dict(
    type='ResNeSt',
    stem_channels=64,
    depth=50,
    radix=2,
    reduction_factor=4,
    avg_down_stride=True,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    norm_eval=False,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest50'))
resnest_preprocessor = dict(mean=[123.68, 116.779, 103.939], std=[58.393, 57.12, 57.375],
                            bgr_to_rgb=True)
