# LESA paper, Table 3/4 row "WR50 HTC LESA 20": the WR50 HTC Dconv. 20 baseline with LESA-WRN-50-2
# (deformable unary term, configs/_base_/backbones/lesa-dcn-r50.py at WRN width). Position tables
# are sized for the largest training scale's stride-16 map (2048 / 16 = 128) so no multi-scale
# image needs interpolation.
_base_ = ['./htc_wrn50-dconv-c3-c5_fpn_20e_coco.py', '../_base_/backbones/lesa-dcn-r50.py']
model = dict(backbone=dict(
    _base_.backbone,
    stage_ops=(None, None, dict(_base_.backbone.stage_ops[2], max_size=128),
               dict(_base_.backbone.stage_ops[3], max_size=64)),
    init_cfg=dict(checkpoint='checkpoints/lesa-wrn50_in1k_mmattn.pth')))
