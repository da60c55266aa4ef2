# LESA paper, Table 2/6 row "R50 LESA" (23.78M parameters, paper): LESA replaces the 3x3 conv
# of layer3[1:] and all of layer4 (layer3[0] keeps its stride-2 conv); the last stage runs at
# stride 1 (output stride 16), as the official classification code. Classification position
# encoding (axial-deeplab style over the flattened 14x14 map at 224 px), 8 heads.
# Its last checkpoint, saved as checkpoints/lesa-r50_in1k_mmattn.pth, is what the detection
# configs load.
_base_ = ['./resnet50_4xb32-cos-90e_in1k.py']
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', pe_type='classification', max_size=14)
model = dict(backbone=dict(type='AttnResNet', strides=(1, 2, 2, 1),
                           stage_ops=(None, None, lesa, lesa),
                           op_blocks=('none', 'none', 'all_but_first', 'all')))
