# LA-layer paper, ImageNet pre-training for Table 4 (not a Table 2 row): LA-ResNet-50 with the
# deep stem of ResNetV1c (three 3x3 convs), the stem of mmseg's DeepLabV3 backbones, so the
# ADE20K LA-R50 row differs from its ResNetV1c baseline only in the LA-layers. Produces
# checkpoints/la-resnetv1c50_in1k.pth.
_base_ = ['./la-resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(deep_stem=True, stem_channels=64))
