# Baseline for the EA plugin: Mask R-CNN, ResNet-50-FPN, 1x, mmdet's standard setting.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
