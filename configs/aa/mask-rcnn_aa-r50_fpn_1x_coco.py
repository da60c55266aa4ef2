# Extension (no paper row): Mask R-CNN, AA-ResNet-50-FPN, mmdet's 1x: the AA paper's RetinaNet
# setting (mmdet's standard input, ImageNet AA-ResNet-50 weights, frozen BN) in mmdet's Mask R-CNN.
_base_ = ['../resnet/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/backbones/aa-r50.py']
model = dict(backbone={{_base_.backbone}})
