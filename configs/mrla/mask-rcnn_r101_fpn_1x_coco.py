# MRLA paper, COCO baseline: Mask R-CNN, ResNet-101-FPN, 1x.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
