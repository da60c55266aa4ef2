# AA paper, ImageNet row AA-ResNet-101 (paper: 45.4M parameters), placement as AA-ResNet-50.
# Its last checkpoint, saved as checkpoints/aa-r101_in1k_mmattn.pth, is what the detection configs
# load.
_base_ = ['./aa-r50_8xb32-100e_in1k.py']
model = dict(backbone=dict(depth=101))
