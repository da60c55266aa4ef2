# MRLA paper, COCO baseline: Cascade Mask R-CNN, ResNet-50-FPN, 1x, mmdet's standard setting.
_base_ = ['mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
