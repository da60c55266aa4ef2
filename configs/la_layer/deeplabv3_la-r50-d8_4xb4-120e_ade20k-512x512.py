# LA-layer paper, ADE20K (Table 4): DeepLabV3, LA-ResNet-50-D8, 120 epochs: the baseline's
# ResNetV1c-50-D8 with every bottleneck 3x3 conv an LA-layer (configs/_base_/backbones/
# la-r50-d8.py), everything else unchanged.
_base_ = ['./deeplabv3_r50-d8_4xb4-120e_ade20k-512x512.py', '../_base_/backbones/la-r50-d8.py']
model = dict(backbone={{_base_.backbone}})
