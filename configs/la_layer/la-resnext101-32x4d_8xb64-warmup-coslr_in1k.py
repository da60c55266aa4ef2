# LA-layer paper, ImageNet (Table 2): LA-ResNeXt-101 (32x4d).
# Its last checkpoint, saved as checkpoints/la-resnext101-32x4d_in1k.pth, is what the detection
# configs load.
_base_ = ['./la-resnext50-32x4d_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(depth=101))
