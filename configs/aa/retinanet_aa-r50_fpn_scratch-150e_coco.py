# AA paper, Table 5 row AA-ResNet-50 in the paper's own setting: from scratch, 150 epochs (the
# scratch baseline with the AA-ResNet-50 backbone, nothing loaded).
_base_ = ['./retinanet_r50_fpn_scratch-150e_coco.py', '../_base_/backbones/aa-r50.py']
model = dict(backbone=dict(_base_.backbone, init_cfg=None))
