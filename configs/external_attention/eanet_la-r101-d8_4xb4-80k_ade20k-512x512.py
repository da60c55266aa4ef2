# EANet's EAHead on the LA-ResNet-101 backbone (every bottleneck 3x3 conv an LALayer), 80k.
_base_ = ['./eanet_la-r50-d8_4xb4-80k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/la-r101-v1c_in1k.pth')))
