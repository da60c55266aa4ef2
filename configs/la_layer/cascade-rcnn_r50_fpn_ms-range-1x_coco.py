# LA-layer paper, COCO (Table 3) baseline: Cascade R-CNN, ResNet-50-FPN, 1x, the LA-layer paper's
# COCO setting (configs/_base_/datasets/coco_ms-range.py: shorter side in [640, 800] for
# training, (1333, 800) for testing); everything else is mmdet's Cascade R-CNN, shared by every
# row, so the rows differ only in the backbone.
_base_ = ['mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py',
          '../_base_/datasets/coco_ms-range.py']
train_dataloader = {{_base_.ms_range.bbox}}
