# AA paper, Table 5 row AA-ResNet-101 in the paper's own setting: from scratch, 150 epochs.
_base_ = ['./retinanet_aa-r50_fpn_scratch-150e_coco.py']
model = dict(backbone=dict(depth=101))
