# AA paper, Table 5 row AA-ResNet-50 in the paper's own setting: from scratch, 150 epochs.
_base_ = ['./retinanet_r50_fpn_scratch-150e_coco.py']
aa = dict(type='AAConv2d', kappa=0.2, upsilon=0.1, num_heads=8, min_key_dims_per_head=20,
          pos_enc='relative')
model = dict(
    backbone=dict(
        type='AttnResNet',
        stage_ops=(None, dict(aa, max_size=168), dict(aa, max_size=84), dict(aa, max_size=42)),
        op_blocks='all'))
