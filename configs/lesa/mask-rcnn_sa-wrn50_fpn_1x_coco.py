# LESA paper, Table 3 row "WR50 SA 12": the self-attention baseline on WRN-50-2.
_base_ = ['./mask-rcnn_sa-r50_fpn_1x_coco.py']
model = dict(backbone=dict(base_channels=128, expansion=2, init_cfg=dict(
    checkpoint='checkpoints/sa-wrn50_in1k_mmattn.pth')))
