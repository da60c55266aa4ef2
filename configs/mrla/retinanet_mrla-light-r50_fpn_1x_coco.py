# MRLA paper, COCO: RetinaNet, MRLA-light ResNet-50-FPN, 1x: the baseline with the MRLA-light
# backbone (configs/_base_/backbones/mrla-light-r50.py), everything else unchanged.
# lr 0.01 for batch 16: mmdet's RetinaNet setting and the official MRLA config's.
_base_ = ['../resnet/retinanet_r50_fpn_1x_coco.py', '../_base_/backbones/mrla-light-r50.py']
model = dict(backbone={{_base_.backbone}})
