# LA-layer paper, ADE20K (Table 4) baseline: DeepLabV3, ResNetV1c-101-D8, 120 epochs.
_base_ = ['./deeplabv3_r50-d8_4xb4-120e_ade20k-512x512.py']
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet101_v1c')))
