# AA paper, Table 5 row AA-ResNet-50 RetinaNet, at mmdet's standard 1x setting: the ResNet-50
# baseline with the AA-ResNet-50 backbone (configs/_base_/backbones/aa-r50.py), initialised from
# configs/aa/aa-r50_8xb32-100e_in1k.py.
_base_ = ['../resnet/retinanet_r50_fpn_1x_coco.py', '../_base_/backbones/aa-r50.py']
model = dict(backbone={{_base_.backbone}})
