# The official LESA_detection setting of mask-rcnn_lesa-dcn-wrn50_fpn_20e_coco, for exact
# reproduction of the official models: every image warped to a fixed 1024x1024 square
# (keep_ratio=False), single-scale training, and position tables of exactly the official fixed
# size (stride 16: 64, stride 32: 32) with no interpolation allowed (beyond_max='error').
_base_ = ['./mask-rcnn_lesa-dcn-wrn50_fpn_20e_coco.py']
train_dataloader = {{_base_.lesa_fixed_1024.mask.train}}
val_dataloader = test_dataloader = {{_base_.lesa_fixed_1024.mask.test}}
model = dict(backbone=dict(stage_ops=tuple(
    op and dict(op, beyond_max='error') for op in _base_.model.backbone.stage_ops)))
