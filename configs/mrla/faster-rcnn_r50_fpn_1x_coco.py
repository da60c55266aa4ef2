# MRLA paper, COCO baseline: Faster R-CNN, ResNet-50-FPN, 1x, mmdet's standard setting.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
