# AA paper, Table 5 baseline: RetinaNet R50-FPN, 1x at mmdet's standard setting (ImageNet
# pretrained backbone, 1333x800, batch 16, lr 0.01).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
