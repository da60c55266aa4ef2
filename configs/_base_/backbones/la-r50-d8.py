# LA-ResNet-50-D8 for segmentation (LA-layer paper, Table 4): mmseg's ResNetV1c-50-D8 (deep
# stem; res4/res5 with stride 1 and dilation 2/4, the first block of each at half dilation)
# with every bottleneck 3x3 conv an LA-layer: in the dilated stages the LA window and its
# offset bound spread by the conv's dilation, as the dilated conv does. Weights:
# configs/la_layer/la-resnetv1c50_8xb64-warmup-coslr_in1k.py -> checkpoints/la-resnetv1c50_in1k.pth
# (mmpretrain checkpoint: prefix 'backbone.').
backbone = dict(
    type='AttnResNet',
    depth=50,
    deep_stem=True,
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    contract_dilation=True,
    stage_ops=(dict(type='LALayer'), ) * 4,
    op_blocks='all',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/la-resnetv1c50_in1k.pth',
                  prefix='backbone.'))
