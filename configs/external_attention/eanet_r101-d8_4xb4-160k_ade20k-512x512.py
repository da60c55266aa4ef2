# EANet, dilated ResNet-101 (the paper's backbone), ADE20K, 160k iterations.
_base_ = ['./eanet_r50-d8_4xb4-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet101_v1c')))
