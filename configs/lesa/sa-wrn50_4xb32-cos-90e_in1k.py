# LESA paper, Table 2 row "WR50 SA" (37.7M, paper) in Wide ResNet-50-2 (bottleneck width x2).
# Its last checkpoint, saved as checkpoints/sa-wrn50_in1k_mmattn.pth, is what the detection
# configs load.
_base_ = ['./sa-r50_4xb32-cos-90e_in1k.py']
model = dict(backbone=dict(base_channels=128, expansion=2))
