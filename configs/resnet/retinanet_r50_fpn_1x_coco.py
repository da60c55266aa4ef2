# Plain ResNet-50 baseline: RetinaNet R50-FPN, 1x, mmdet's standard setting (ImageNet pretrained
# backbone, 1333x800, batch 16, lr 0.01: also the official MRLA config's). The baseline of the AA
# (Table 5, mmdet setting) and MRLA papers' RetinaNet rows.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
