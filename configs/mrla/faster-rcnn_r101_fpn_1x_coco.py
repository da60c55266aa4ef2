# MRLA paper, COCO baseline: Faster R-CNN, ResNet-101-FPN, 1x.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
