# LA-layer paper, COCO (Table 3) baseline: Cascade R-CNN, ResNeSt-50-FPN, ms-range 1x: mmdet's
# ResNeSt backbone as its configs/resnest/ ship it (configs/_base_/backbones/resnest50.py).
_base_ = ['./cascade-rcnn_r50_fpn_ms-range-1x_coco.py', '../_base_/backbones/resnest50.py']
model = dict(data_preprocessor={{_base_.resnest_preprocessor}}, backbone={{_base_.backbone}})
