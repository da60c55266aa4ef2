# AA paper, Table 5, the paper's own setting (appendix A.2): RetinaNet trained from scratch
# (no ImageNet pretraining) for 150 epochs. The paper gives nothing else; our choices for
# training from scratch, documented in configs/aa/README.md: every norm trains (SyncBN across
# GPUs, nothing frozen), batch 64 (8 GPUs x 8), lr 0.04 with 1000 warm-up iterations and steps
# at epochs 120 and 140.
_base_ = ['../resnet/retinanet_r50_fpn_1x_coco.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    bbox_head=dict(norm_cfg=norm_cfg))
train_dataloader = dict(batch_size=8)
optim_wrapper = dict(optimizer=dict(lr=0.04), clip_grad=dict(max_norm=35, norm_type=2))
train_cfg = dict(max_epochs=150)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=150, by_epoch=True, milestones=[120, 140], gamma=0.1)]
auto_scale_lr = dict(enable=False, base_batch_size=64)
