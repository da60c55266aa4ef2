# LA-layer paper, ImageNet baseline: ResNeXt-101 (32x4d) under the paper's schedule.
_base_ = ['./resnext50-32x4d_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(depth=101))
