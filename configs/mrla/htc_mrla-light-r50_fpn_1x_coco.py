# Extension (no paper row): HTC, MRLA-light ResNet-50-FPN, mmdet's 1x; the MRLA backbone of the
# paper's COCO rows (configs/_base_/backbones/mrla-light-r50.py) in mmdet's HTC.
_base_ = ['../resnet/htc_r50_fpn_1x_coco.py', '../_base_/backbones/mrla-light-r50.py']
model = dict(backbone={{_base_.backbone}})
