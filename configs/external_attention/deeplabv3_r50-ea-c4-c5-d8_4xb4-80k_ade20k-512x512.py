# Extension (no paper row): DeepLabV3 on ADE20K, ResNetV1c-50-D8 with an external-attention block
# after conv3 of every bottleneck of stages 3-4 (configs/_base_/backbones/r50-ea-c4-c5.py),
# mmseg's 80k schedule; everything else is the baseline. The EA paper's own segmentation network
# is EANet (eanet_*.py: external attention in the decode head).
_base_ = [
    '../resnet/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/backbones/r50-ea-c4-c5.py'
]
model = dict(backbone={{_base_.backbone}})
