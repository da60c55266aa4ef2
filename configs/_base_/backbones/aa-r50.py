# AA-ResNet-50 for detection (AA paper Sec. 4.2 / Table 5): every bottleneck 3x3 conv in stages
# 2-4 is an attention augmented conv (Nh=8, kappa=0.2, upsilon=0.1, at least 20 key dims per
# head, as configs/aa/aa-r50_8xb32-100e_in1k.py). COCO images are up to 1333x800 in either
# orientation, so the relative tables are sized for 168 / 84 / 42 (strides 8 / 16 / 32). The
# explicit form would need an 8.4 GiB logits tensor per layer at stride 8; the fused path never
# builds it. Weights: the ImageNet AA-ResNet-50 (ImageClassifier keys, prefix 'backbone.'); its
# tables, sized for 224 px, start fresh.
aa = dict(type='AAConv2d', kappa=0.2, upsilon=0.1, num_heads=8, min_key_dims_per_head=20,
          pos_enc='relative')
backbone = dict(
    type='AttnResNet',
    stage_ops=(None, dict(aa, max_size=168), dict(aa, max_size=84), dict(aa, max_size=42)),
    op_blocks='all',
    allow_uninitialised=('*.rel_height', '*.rel_width'),
    init_cfg=dict(type='Pretrained', prefix='backbone.',
                  checkpoint='checkpoints/aa-r50_in1k_mmattn.pth'))
