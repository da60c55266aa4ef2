# Extension (no paper row): RetinaNet, LESA-R50-FPN (configs/_base_/backbones/lesa-r50.py), the
# baseline of the same recipe with the LESA backbone.
_base_ = ['./retinanet_r50_fpn_1x_coco.py', '../_base_/backbones/lesa-r50.py']
model = dict(backbone={{_base_.backbone}})
