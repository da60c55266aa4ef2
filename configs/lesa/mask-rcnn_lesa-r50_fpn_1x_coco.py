# LESA paper, Table 3/4 row "R50 LESA 12": the R50 Conv. 12 baseline with the LESA-R50 backbone
# (configs/_base_/backbones/lesa-r50.py), everything else unchanged.
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py', '../_base_/backbones/lesa-r50.py']
model = dict(backbone={{_base_.backbone}})
