# LESA paper, Table 3 row "WR50 HTC Dconv. 20": HTC with WRN-50-2 (DCNv1 in stages 2-4), 20
# epochs, 4 GPUs x 1 image, lr 0.005 (official LESA_detection repo), the paper's multi-scale
# training: with probability 0.5 a scale uniform in 512-1024, else uniform in 1024-2048 (the
# image is fitted into that square, keeping its aspect ratio), tested at 1024.
_base_ = ['mmdet::htc/htc_r50_fpn_20e_coco.py', '../_base_/mmattn_imports.py']

test_scale = (1024, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomResize', scale=(1024, 1024), ratio_range=(0.5, 1.0),
                  keep_ratio=True)],
            [dict(type='RandomResize', scale=(1024, 1024), ratio_range=(1.0, 2.0),
                  keep_ratio=True)],
        ],
        prob=[0.5, 0.5]),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(batch_size=1, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=4)
model = dict(
    backbone=dict(
        type='AttnResNet',
        base_channels=128,
        expansion=2,
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://wide_resnet50_2')))
