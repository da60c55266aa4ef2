# Extension (no paper row): DeepLabV3 on ADE20K, LESA-R50-D8, mmseg's 80k schedule: the
# baseline's dilated ResNet-50 (output stride 8) with LESA in layer3[1:] and layer4 (the 7x7 stem
# of the LESA ImageNet checkpoint, not ResNetV1c's deep stem), position tables sized for the
# stride-8 map of a 512 crop (64) and interpolated for the whole-image test at (2048, 512).
_base_ = [
    '../resnet/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/backbones/lesa-r50.py'
]
model = dict(backbone=dict(_base_.backbone, stage_ops=tuple(
    op and dict(op, max_size=64) for op in _base_.backbone.stage_ops)))
