# LA-layer paper, ADE20K (Table 4) baseline: DeepLabV3, ResNeSt-101-D8, 120 epochs (mmseg's
# resnest_s101-d8_deeplabv3 config on the 120-epoch schedule).
_base_ = ['./deeplabv3_s50-d8_4xb4-120e_ade20k-512x512.py']
model = dict(
    backbone=dict(
        depth=101,
        stem_channels=128,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest101')))
