# Plain ResNet-50 baseline: HTC R50-FPN, 1x, mmdet's standard setting (the extension rows that keep
# mmdet's setting; the LESA paper's HTC rows are in configs/lesa/).
_base_ = ['mmdet::htc/htc_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py']
