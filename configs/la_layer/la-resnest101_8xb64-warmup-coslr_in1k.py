# LA-layer paper, ImageNet pre-training for Table 4 (not a Table 2 row): LA-ResNeSt-101 (deep
# stem 64-64-128, as mmseg's ResNeSt-101). Produces checkpoints/la-resnest101_in1k.pth.
_base_ = ['./la-resnest50_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(depth=101, stem_channels=128))
