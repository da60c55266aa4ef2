# AA paper, Table 5 baseline: RetinaNet R101-FPN, 1x at mmdet's standard setting.
_base_ = ['mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
