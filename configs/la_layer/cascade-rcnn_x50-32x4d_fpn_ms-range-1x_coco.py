# LA-layer paper, COCO (Table 3) baseline: Cascade R-CNN, ResNeXt-50 (32x4d)-FPN, ms-range 1x.
_base_ = ['./cascade-rcnn_r50_fpn_ms-range-1x_coco.py', '../_base_/backbones/resnext50-32x4d.py']
model = dict(backbone={{_base_.backbone}})
