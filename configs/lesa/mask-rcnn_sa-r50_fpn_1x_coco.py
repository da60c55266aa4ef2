# LESA paper, Table 3 row "R50 SA 12": the self-attention baseline (binary term only: relative
# position self-attention, no unary term, no fusion) in the same places as LESA.
_base_ = ['./mask-rcnn_lesa-r50_fpn_1x_coco.py']
sa = dict(type='LESA', num_heads=8, fusion='none', pe_type='detection_qr')
model = dict(
    backbone=dict(
        stage_ops=(None, None, dict(sa, max_size=64), dict(sa, max_size=32)),
        # the ImageNet checkpoint has the classification position encoding: detection starts it fresh
        allow_uninitialised=('*.rel_height', '*.rel_width', '*.bn_output.*', '*.bn_similarity.*'),
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/sa-r50_in1k_mmattn.pth')))
