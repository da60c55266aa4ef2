# Plain ResNet-50 baseline: DeepLabV3 ResNetV1c-50-D8 on ADE20K, mmseg's standard 80k schedule
# (512x512 crops, SGD lr 0.01, SyncBN, auxiliary FCN head): the baseline of the extension rows.
# The ImageNet weights move from the model-level `pretrained` to the backbone's init_cfg (same
# effect), where the attention configs replace them.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/mmattn_imports.py'
]
model = dict(
    pretrained=None,
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')))
