# LESA paper, Table 3 row "WR50 HTC Dconv.^h 20": the higher-resolution row, tested at 1280.
_base_ = ['./htc_wrn50-dconv-c3-c5_fpn_20e_coco.py']
test_scale = (1280, 1280)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
