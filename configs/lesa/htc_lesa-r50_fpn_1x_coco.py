# Extension (no paper row): HTC, LESA-R50-FPN (configs/_base_/backbones/lesa-r50.py), the
# baseline of the same recipe with the LESA backbone.
_base_ = ['./htc_r50_fpn_1x_coco.py', '../_base_/backbones/lesa-r50.py']
# Position tables sized for the largest training scale's maps (2048 / 16 = 128, / 32 = 64).
model = dict(backbone=dict(_base_.backbone, stage_ops=(
    None, None, dict(_base_.backbone.stage_ops[2], max_size=128),
    dict(_base_.backbone.stage_ops[3], max_size=64))))
