# Plain ResNet-101 baseline: Faster R-CNN R101-FPN, 1x, mmdet's standard setting (MRLA paper, COCO).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
