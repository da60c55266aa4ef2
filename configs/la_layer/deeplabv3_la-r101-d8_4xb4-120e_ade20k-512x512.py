# LA-layer paper, ADE20K (Table 4): DeepLabV3, LA-ResNet-101-D8, 120 epochs.
# Weights: configs/la_layer/la-resnetv1c101_8xb64-warmup-coslr_in1k.py.
_base_ = ['./deeplabv3_la-r50-d8_4xb4-120e_ade20k-512x512.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    type='Pretrained', prefix='backbone.', checkpoint='checkpoints/la-resnetv1c101_in1k.pth')))
