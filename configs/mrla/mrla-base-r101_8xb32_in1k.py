# MRLA paper, ImageNet: MRLA-base ResNet-101, official schedule.
_base_ = ['./mrla-base-r50_8xb32_in1k.py']
model = dict(backbone=dict(depth=101))
