# Extension (no paper row) baseline: HTC R50-FPN under the LESA recipe: mmdet's 1x on
# the paper's HTC input (multi-scale 512-2048, tested at 1024)
# (configs/_base_/datasets/coco_lesa.py); batch 16 and lr as mmdet (the paper rows' 8 x 1 image
# was the official code's memory limit).
_base_ = ['mmdet::htc/htc_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py',
          '../_base_/datasets/coco_lesa.py']
train_dataloader = {{_base_.lesa_htc_ms_1024.htc.train}}
val_dataloader = test_dataloader = {{_base_.lesa_htc_ms_1024.htc.test}}
