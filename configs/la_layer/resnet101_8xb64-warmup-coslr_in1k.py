# LA-layer paper, ImageNet baseline: ResNet-101 under the paper's schedule.
_base_ = ['./resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(depth=101))
