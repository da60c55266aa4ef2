# AA paper, ImageNet row AA-ResNet-50 (paper: 25.8M parameters, 77.7 top-1): every bottleneck's
# 3x3 conv in stages 2-4 becomes an attention augmented conv, Nh=8, kappa=0.2 (dk/Fout),
# upsilon=0.1 (dv/Fout), at least 20 key dims per head: the reading that reproduces the paper's
# parameter counts (kappa=upsilon=0.2 gives 24.80M). Relative tables sized for each stage's
# output at 224 px (28, 14, 7; stride-2 blocks attend after the 3x3/2 average pooling).
# Its last checkpoint, saved as checkpoints/aa-r50_in1k_mmattn.pth, is what the detection configs
# load.
_base_ = ['./resnet50_8xb32-aa-100e_in1k.py']
aa = dict(type='AAConv2d', kappa=0.2, upsilon=0.1, num_heads=8, min_key_dims_per_head=20,
          pos_enc='relative')
model = dict(
    backbone=dict(
        stage_ops=(None, dict(aa, max_size=28), dict(aa, max_size=14), dict(aa, max_size=7)),
        op_blocks='all'))
