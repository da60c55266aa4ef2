# AA paper, ImageNet baseline ResNet-101 under the AA schedule.
_base_ = ['./resnet50_8xb32-aa-100e_in1k.py']
model = dict(backbone=dict(depth=101))
