# MRLA paper, COCO baseline: RetinaNet (lr 0.01 for batch 16, as mmdet's and the official MRLA config), ResNet-101-FPN, 1x.
_base_ = ['mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
