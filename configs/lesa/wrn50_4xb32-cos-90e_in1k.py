# LESA paper, Table 2 row "WR50 Conv." (68.9M): Wide ResNet-50-2 (the paper reports torchvision's
# weights, 78.5 top-1) trained under the LESA schedule.
_base_ = ['./resnet50_4xb32-cos-90e_in1k.py']
model = dict(backbone=dict(type='AttnResNet', base_channels=128, expansion=2))
