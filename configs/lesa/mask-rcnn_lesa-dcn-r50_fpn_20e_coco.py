# LESA paper, Table 3/4 row "R50 LESA 20": the R50 Dconv. 20 baseline with LESA whose unary term is
# deformable (configs/_base_/backbones/lesa-dcn-r50.py); stage 2's convs and layer3[0]'s strided
# conv stay deformable, as in the baseline. 20 epochs.
_base_ = ['./mask-rcnn_r50-dconv-c3-c5_fpn_20e_coco.py', '../_base_/backbones/lesa-dcn-r50.py']
model = dict(backbone={{_base_.backbone}})
