# Static LESA in Wide ResNet-50-2 (the paper has no WR50 static row; the issue asks for
# R50 and WRN50 x {conv, SA, static LESA, LESA}). Bottleneck width x2.
_base_ = ['./static-lesa-r50_4xb32-cos-90e_in1k.py']
model = dict(backbone=dict(base_channels=128, expansion=2))
