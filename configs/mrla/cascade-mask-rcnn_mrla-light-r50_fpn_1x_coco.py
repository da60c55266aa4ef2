# MRLA paper, COCO: Cascade Mask R-CNN, MRLA-light ResNet-50-FPN, 1x.
# Every bottleneck gets the MRLA-light branch after its residual sum (official placement);
# the backbone's ImageNet weights come from configs/mrla/mrla-light-r50_8xb32_in1k.py, or an
# official checkpoint converted by tools/model_converters/mrla_to_mmattn.py.
_base_ = ['./cascade-mask-rcnn_r50_fpn_1x_coco.py']
model = dict(
    backbone=dict(
        type='MRLAResNet',
        mrla_type='light',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mrla-light-r50_in1k.pth')))
