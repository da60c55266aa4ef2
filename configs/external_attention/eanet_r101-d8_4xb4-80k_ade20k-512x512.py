# EANet on ADE20K with the dilated ResNet-101 of the paper (the official segmentation network),
# 80k iterations. Everything else as eanet_r50-d8_4xb4-80k_ade20k-512x512.py.
_base_ = ['./eanet_r50-d8_4xb4-80k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet101_v1c')))
