# Plain ResNet-101 baseline: RetinaNet R101-FPN, 1x, mmdet's standard setting (AA Table 5, MRLA).
_base_ = ['mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
