# The official LESA_detection setting of
# mask-rcnn_lesa-dcn-r50_fpn_20e_coco, for exact reproduction of the
# official models: every image warped to a fixed 1024x1024 square (keep_ratio=False), single-scale
# training, and position tables of exactly the official fixed size (stride 16: 64,
# stride 32: 32) with no interpolation allowed (beyond_max='error').
_base_ = ['./mask-rcnn_lesa-dcn-r50_fpn_20e_coco.py']
img_scale = (1024, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=False),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=False),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', unary='dcn', pe_type='detection_qr')
model = dict(
    backbone=dict(stage_ops=(None, None, dict(lesa, max_size=64, beyond_max='error'),
                             dict(lesa, max_size=32, beyond_max='error'))))
