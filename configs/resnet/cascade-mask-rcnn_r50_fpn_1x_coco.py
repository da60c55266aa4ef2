# Plain ResNet-50 baseline: Cascade Mask R-CNN R50-FPN, 1x, mmdet's standard setting (MRLA paper,
# COCO; and the extension rows that keep mmdet's setting).
_base_ = ['mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
