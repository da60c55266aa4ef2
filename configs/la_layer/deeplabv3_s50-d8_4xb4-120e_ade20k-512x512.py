# LA-layer paper, ADE20K (Table 4) baseline: DeepLabV3, ResNeSt-50-D8, 120 epochs. As mmseg's
# configs/resnest (shipped for ResNeSt-101 only): the ResNeSt backbone
# (configs/_base_/backbones/resnest50.py: stem 32-32-64, radix 2, SyncBN) in the DeepLabV3 of the
# ResNet rows.
_base_ = ['./deeplabv3_r50-d8_4xb4-120e_ade20k-512x512.py', '../_base_/backbones/resnest50.py']
model = dict(backbone={{_base_.backbone}})
