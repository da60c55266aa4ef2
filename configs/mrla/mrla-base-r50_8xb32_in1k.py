# MRLA paper, ImageNet: MRLA-base (Eq. 6: softmax over the keys of all earlier blocks of the
# stage, heads of 16 channels) ResNet-50 (official `resnet50_mrlab`, resnet/models/
# resnet_mrla_base.py), official schedule, drop path 0.2 on the MRLA branch (from the light
# config).
# deep_stem=True: the official base model replaces the 7x7 stem by three 3x3 convs 32-32-64
# (conv-BN-ReLU, conv-BN-ReLU, conv, then bn1-ReLU), which is mmseg's deep stem with
# stem_channels=64; the light model and the detection backbones keep the 7x7 stem.
# No avg_down: the official projection shortcut stays a strided 1x1 conv.
_base_ = ['./mrla-light-r50_8xb32_in1k.py']
model = dict(backbone=dict(mrla_type='base', deep_stem=True))
