# Plain ResNet-50 baseline: Mask R-CNN R50-FPN, 1x, mmdet's standard setting (1333x800, batch 16,
# lr 0.02). The baseline of the MRLA paper's COCO table, and of every extension row that keeps
# mmdet's setting (AA, MRLA, the EA plugin).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
