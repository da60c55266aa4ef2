# LESA paper, Table 3/4 row "WR50 LESA 12": LESA-WRN-50-2, placement as the R50 row.
_base_ = ['./mask-rcnn_lesa-r50_fpn_1x_coco.py']
model = dict(backbone=dict(base_channels=128, expansion=2, init_cfg=dict(
    checkpoint='checkpoints/lesa-wrn50_in1k_mmattn.pth')))
