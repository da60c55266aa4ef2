# MRLA paper, COCO: Mask R-CNN, MRLA-light ResNet-50-FPN, 1x: the baseline with the MRLA-light
# backbone (configs/_base_/backbones/mrla-light-r50.py), everything else unchanged.
_base_ = ['../resnet/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/backbones/mrla-light-r50.py']
model = dict(backbone={{_base_.backbone}})
