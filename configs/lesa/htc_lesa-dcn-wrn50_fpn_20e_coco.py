# LESA paper, Table 3/4 row "WR50 HTC LESA 20": HTC with LESA-WRN-50-2 (deformable unary term,
# DCNv1 in stage 2 and layer3[0]), multi-scale training as the Dconv baseline. Position tables
# are sized for the largest training scale's stride-16 map (2048 / 16 = 128) so no multi-scale
# image needs interpolation.
_base_ = ['./htc_wrn50-dconv-c3-c5_fpn_20e_coco.py']
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', unary='dcn', pe_type='detection_qr')
model = dict(
    backbone=dict(
        stage_ops=(None, None, dict(lesa, max_size=128), dict(lesa, max_size=64)),
        op_blocks=('none', 'none', 'all_but_first', 'all'),
        # the ImageNet checkpoint has the classification position encoding: detection starts it fresh (and zero DCN offsets)
        allow_uninitialised=('*.rel_height', '*.rel_width', '*.bn_output.*', '*.bn_similarity.*', '*.conv_offset.*'),
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/lesa-wrn50_in1k_mmattn.pth')))
