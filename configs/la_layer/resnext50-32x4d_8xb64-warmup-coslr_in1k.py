# LA-layer paper, ImageNet baseline: ResNeXt-50 (32x4d) under the paper's schedule.
_base_ = ['./resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(
    backbone=dict(type='ResNeXt', depth=50, groups=32, width_per_group=4))
