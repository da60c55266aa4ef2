# LESA paper, Table 3/4 row "WR50 LESA 20": LESA-WRN-50-2 with the deformable unary term.
_base_ = ['./mask-rcnn_lesa-dcn-r50_fpn_20e_coco.py']
model = dict(backbone=dict(base_channels=128, expansion=2, init_cfg=dict(
    checkpoint='checkpoints/lesa-wrn50_in1k_mmattn.pth')))
