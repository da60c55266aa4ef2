# LA-layer paper, ADE20K (Table 4) baseline: DeepLabV3, ResNeSt-50-D8, 120 epochs. As mmseg's
# configs/resnest (shipped for ResNeSt-101 only): ResNeSt backbone in the DeepLabV3 of the
# ResNet rows, stem 32-32-64 for the 50-layer net.
_base_ = ['./deeplabv3_r50-d8_4xb4-120e_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='ResNeSt',
        stem_channels=64,
        radix=2,
        reduction_factor=4,
        avg_down_stride=True,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest50')))
