# AA paper, ImageNet row AA-ResNet-152 (paper: 61.6M parameters), placement as AA-ResNet-50.
_base_ = ['./aa-r50_8xb32-100e_in1k.py']
model = dict(backbone=dict(depth=152))
