# LA-ResNet-50 for detection (LA-layer paper, Table 3): every bottleneck 3x3 conv of res2-res5
# is an LA-layer (Table 1; k=3, L=7, m=8 by default). Weights: the ImageNet run of
# configs/la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py, saved as
# checkpoints/la-resnet50_in1k.pth (an mmpretrain checkpoint: prefix 'backbone.'). frozen_stages=1
# and norm_eval=True as the baselines (stem and res2 frozen, LA-layers included).
backbone = dict(
    type='AttnResNet',
    depth=50,
    stage_ops=(dict(type='LALayer'), ) * 4,
    op_blocks='all',
    frozen_stages=1,
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/la-resnet50_in1k.pth',
                  prefix='backbone.'))
