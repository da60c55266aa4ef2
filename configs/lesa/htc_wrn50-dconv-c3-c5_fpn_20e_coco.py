# LESA paper, Table 3 row "WR50 HTC Dconv. 20": HTC with WRN-50-2 (DCNv1 in stages 2-4), 20
# epochs, 4 GPUs x 1 image, lr 0.005 (official LESA_detection repo), the paper's multi-scale
# training: with probability 0.5 a scale uniform in 512-1024, else uniform in 1024-2048 (the
# image is fitted into that square, keeping its aspect ratio), tested at 1024
# (configs/_base_/datasets/coco_lesa.py).
_base_ = ['mmdet::htc/htc_r50_fpn_20e_coco.py', '../_base_/mmattn_imports.py',
          '../_base_/datasets/coco_lesa.py']
model = dict(backbone=dict(
    type='AttnResNet', base_channels=128, expansion=2,
    dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
    stage_with_dcn=(False, True, True, True),
    init_cfg=dict(type='Pretrained', checkpoint='torchvision://wide_resnet50_2')))
train_dataloader = dict(_base_.lesa_htc_ms_1024.htc.train, batch_size=1, num_workers=2)
val_dataloader = test_dataloader = {{_base_.lesa_htc_ms_1024.htc.test}}
# 4 GPUs x 1 image: mmdet's lr for 16 images (0.02) scaled to 4
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=4)
