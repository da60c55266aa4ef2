# LESA paper, Table 3 row "R50 SA 12": the self-attention baseline (binary term only: relative
# position self-attention, no unary term, no fusion) in the same places as LESA.
_base_ = ['./mask-rcnn_lesa-r50_fpn_1x_coco.py']
model = dict(backbone=dict(
    stage_ops=tuple(op and dict(op, fusion='none') for op in _base_.model.backbone.stage_ops),
    init_cfg=dict(checkpoint='checkpoints/sa-r50_in1k_mmattn.pth')))
