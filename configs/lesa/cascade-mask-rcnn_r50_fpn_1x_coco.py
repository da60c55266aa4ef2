# Extension (no paper row) baseline: Cascade Mask R-CNN R50-FPN under the LESA recipe: mmdet's 1x on
# LESA's single-scale 1024 input (configs/_base_/datasets/coco_lesa.py);
# batch 16 and lr as mmdet (the paper rows' 8 x 1 image was the official code's memory limit).
_base_ = ['mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py',
          '../_base_/datasets/coco_lesa.py']
train_dataloader = {{_base_.lesa_1024.mask.train}}
val_dataloader = test_dataloader = {{_base_.lesa_1024.mask.test}}
