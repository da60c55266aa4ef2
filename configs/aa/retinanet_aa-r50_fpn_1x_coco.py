# AA paper, Table 5 row AA-ResNet-50 RetinaNet, at mmdet's standard 1x setting (the backbone
# initialised from configs/aa/aa-r50_8xb32-100e_in1k.py). Every bottleneck 3x3 conv in stages
# 2-4 is augmented (as for ImageNet). COCO images are up to 1333x800 in either orientation, so
# the tables are sized for 168 / 84 / 42 (strides 8 / 16 / 32). The explicit form would need an
# 8.4 GiB logits tensor per layer at stride 8; the fused path never builds it.
_base_ = ['./retinanet_r50_fpn_1x_coco.py']
aa = dict(type='AAConv2d', kappa=0.2, upsilon=0.1, num_heads=8, min_key_dims_per_head=20,
          pos_enc='relative')
model = dict(
    backbone=dict(
        type='AttnResNet',
        stage_ops=(None, dict(aa, max_size=168), dict(aa, max_size=84), dict(aa, max_size=42)),
        op_blocks='all',
        # tables sized for 224 px on ImageNet start fresh at detection sizes
        allow_uninitialised=('*.rel_height', '*.rel_width'),
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/aa-r50_in1k_mmattn.pth')))
