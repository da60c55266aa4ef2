# AA paper, ImageNet baseline ResNet-152 under the AA schedule.
_base_ = ['./resnet50_8xb32-aa-100e_in1k.py']
model = dict(backbone=dict(depth=152))
