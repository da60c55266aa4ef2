# EANet's EAHead on the LA-ResNetV1c-101 backbone (every bottleneck 3x3 conv an LALayer), 80k.
# Weights: configs/la_layer/la-resnetv1c101_8xb64-warmup-coslr_in1k.py.
_base_ = ['./eanet_la-r50-d8_4xb4-80k_ade20k-512x512.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    type='Pretrained', prefix='backbone.', checkpoint='checkpoints/la-resnetv1c101_in1k.pth')))
