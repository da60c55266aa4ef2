# LESA-R50 for detection (LESA paper Sec. 4.2, official LESA_detection): LESA replaces the 3x3
# conv of layer3[1:] and all of layer4 (layer3[0] keeps its stride-2 conv; layer4[0] is a
# stride-2 LESA: attention at its input size, then 2x2 average pooling). Detection position
# encoding (2-D relative, query term), tables sized for each stage's map at 1024 input (stride
# 16: 64, stride 32: 32) and interpolated beyond it. Weights: LESA-R50 trained on ImageNet
# (configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py, or the official checkpoint converted by
# tools/model_converters/lesa_to_mmattn.py); the detection position tables start fresh, as in
# the paper ("we initialize new position embedding layers").
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', unary='conv', pe_type='detection_qr')
backbone = dict(
    type='AttnResNet',
    stage_ops=(None, None, dict(lesa, max_size=64), dict(lesa, max_size=32)),
    op_blocks=('none', 'none', 'all_but_first', 'all'),
    # the ImageNet checkpoint has the classification position encoding: detection starts it fresh
    allow_uninitialised=('*.rel_height', '*.rel_width', '*.bn_output.*', '*.bn_similarity.*'),
    init_cfg=dict(type='Pretrained', prefix='backbone.',
                  checkpoint='checkpoints/lesa-r50_in1k_mmattn.pth'))
