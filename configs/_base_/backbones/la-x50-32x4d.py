# LA-ResNeXt-50 (32x4d) for detection (LA-layer paper, Table 3): the LA-R50 backbone on ResNeXt;
# the LA-layers keep the grouped conv's groups=32. Weights:
# configs/la_layer/la-resnext50-32x4d_8xb64-warmup-coslr_in1k.py ->
# checkpoints/la-resnext50-32x4d_in1k.pth.
_base_ = ['./la-r50.py']
backbone = dict(type='AttnResNeXt', groups=32, base_width=4, init_cfg=dict(
    checkpoint='checkpoints/la-resnext50-32x4d_in1k.pth'))
