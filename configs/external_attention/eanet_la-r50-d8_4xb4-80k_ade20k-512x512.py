# EANet's EAHead on an LA backbone (LA-layer paper's operator): every bottleneck 3x3 conv of the
# dilated ResNet-50 becomes an LALayer with that conv's dilation (stage 3: 1, then 2; stage 4:
# 2, 8, 16 from the official multi-grid). AttnResNet is mmseg's ResNet, so `deep_stem=True`
# gives the ResNetV1c layout of the plain EANet config; strides, dilations, contract_dilation,
# multi-grid, norms, the heads, data and 80k schedule are inherited from it, so the operator is
# the only difference.
_base_ = ['./eanet_r50-d8_4xb4-80k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='AttnResNet',
        depth=50,
        deep_stem=True,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=True,
        stage_ops=(dict(type='LALayer'), ) * 4,
        # ImageNet weights of an LA-ResNet-50 with the deep (V1c) stem, in mmseg ResNet keys;
        # not produced in this repository (see README.md: "Pretrained weights").
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/la-r50-v1c_in1k.pth')))
