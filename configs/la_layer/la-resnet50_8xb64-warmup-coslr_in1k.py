# LA-layer paper, ImageNet (Table 2): LA-ResNet-50, the paper's schedule (see the baseline).
# Table 1: every bottleneck's 3x3 conv in res2-res5 (all 16 blocks, strided ones included)
# becomes an LA-layer with the conv's width, stride and groups; k=3, L=7, m=8 heads (Sec. 4.1)
# are LALayer's defaults. The stem, 1x1 convs, shortcuts, BN and fc are unchanged.
# The trained checkpoint (epoch_100.pth, renamed checkpoints/la-resnet50_in1k.pth) is what the
# COCO configs load.
_base_ = ['./resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(
    backbone=dict(
        type='AttnResNet',
        depth=50,
        stage_ops=(dict(type='LALayer'), ) * 4,
        op_blocks='all'))
