# Extension (no paper row): Mask R-CNN, LA-ResNet-50-FPN, ms-range 1x: the baseline with every
# bottleneck 3x3 conv an LA-layer (configs/_base_/backbones/la-r50.py).
_base_ = ['./mask-rcnn_r50_fpn_ms-range-1x_coco.py', '../_base_/backbones/la-r50.py']
model = dict(backbone={{_base_.backbone}})
