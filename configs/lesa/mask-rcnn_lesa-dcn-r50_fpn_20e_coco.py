# LESA paper, Table 3/4 row "R50 LESA 20": LESA with the deformable unary term (its grouped 3x3
# becomes DCNv1, groups 8, deform_groups 1, zero-initialised offsets); as in the Dconv baseline,
# stage 2's convs and layer3[0]'s strided conv are deformable too. 20 epochs.
_base_ = ['./mask-rcnn_r50-dconv-c3-c5_fpn_20e_coco.py']
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', unary='dcn', pe_type='detection_qr')
model = dict(
    backbone=dict(
        type='AttnResNet',
        stage_ops=(None, None, dict(lesa, max_size=64), dict(lesa, max_size=32)),
        op_blocks=('none', 'none', 'all_but_first', 'all'),
        # the ImageNet checkpoint has the classification position encoding: detection starts it fresh (and zero DCN offsets)
        allow_uninitialised=('*.rel_height', '*.rel_width', '*.bn_output.*', '*.bn_similarity.*', '*.conv_offset.*'),
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/lesa-r50_in1k_mmattn.pth')))
