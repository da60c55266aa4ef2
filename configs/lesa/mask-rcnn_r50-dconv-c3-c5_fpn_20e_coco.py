# LESA paper, Table 3 row "R50 Dconv. 20": every conv2 of stages 2-4 is a deformable conv
# (DCNv1, deform_groups=1, as the paper's "standard setting"), 20 epochs (lr x0.1 after 16, 19).
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py']
model = dict(backbone=dict(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
                           stage_with_dcn=(False, True, True, True)))
train_cfg = dict(max_epochs=20)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=20, by_epoch=True, milestones=[16, 19], gamma=0.1)]
