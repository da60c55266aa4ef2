# MRLA paper, ImageNet: MRLA-base ResNet-101 (official `resnet101_mrlab`: deep 32-32-64 stem,
# inherited with everything else from the R50 config), official schedule.
_base_ = ['./mrla-base-r50_8xb32_in1k.py']
model = dict(backbone=dict(depth=101))
