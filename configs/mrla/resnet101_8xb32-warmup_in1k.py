# MRLA paper, ImageNet baseline: ResNet-101 under the MRLA schedule.
_base_ = ['./resnet50_8xb32-warmup_in1k.py']
model = dict(backbone=dict(depth=101))
