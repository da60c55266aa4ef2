# Extension (no paper row): Cascade Mask R-CNN R50-FPN, mmdet's 1x, with an external-attention
# block after conv3 of every bottleneck of stages 3-4 (configs/_base_/backbones/r50-ea-c4-c5.py: a
# plugin of the stock ResNet, identity at initialisation); everything else is the baseline.
_base_ = ['../resnet/cascade-mask-rcnn_r50_fpn_1x_coco.py', '../_base_/backbones/r50-ea-c4-c5.py']
model = dict(backbone={{_base_.backbone}})
