# MRLA paper, ImageNet: MRLA-light ResNet-101 (official `resnet101_mrlal`), official schedule,
# drop path 0.2 on the MRLA branch (inherited from the R50 config).
# Its last checkpoint, saved as checkpoints/mrla-light-r101_in1k.pth, is what the detection
# configs load.
_base_ = ['./mrla-light-r50_8xb32_in1k.py']
model = dict(backbone=dict(depth=101))
