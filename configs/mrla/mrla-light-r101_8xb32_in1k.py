# MRLA paper, ImageNet: MRLA-light ResNet-101, official schedule.
_base_ = ['./mrla-light-r50_8xb32_in1k.py']
model = dict(backbone=dict(depth=101))
