# Extension (no paper row): DeepLabV3 on ADE20K, AA-ResNet-50-D8, mmseg's 80k schedule: the
# baseline's dilated ResNet-50 (output stride 8) with every 3x3 conv of stages 2-4 attention
# augmented (the 7x7 stem of the AA ImageNet checkpoint, not ResNetV1c's deep stem); every AA
# stage runs at stride 8, so the tables are sized for the whole-image test at (2048, 512): 256.
_base_ = [
    '../resnet/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/backbones/aa-r50.py'
]
model = dict(backbone=dict(_base_.backbone, stage_ops=tuple(
    op and dict(op, max_size=256) for op in _base_.backbone.stage_ops)))
