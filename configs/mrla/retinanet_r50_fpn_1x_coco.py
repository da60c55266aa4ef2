# MRLA paper, COCO baseline: RetinaNet, ResNet-50-FPN, 1x, mmdet's standard setting.
# lr 0.01 for batch 16: mmdet's RetinaNet setting and the official MRLA config's.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
