# LA-layer paper, ImageNet pre-training for Table 4 (not a Table 2 row): LA-ResNetV1c-101.
# Produces checkpoints/la-resnetv1c101_in1k.pth.
_base_ = ['./la-resnetv1c50_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(depth=101))
