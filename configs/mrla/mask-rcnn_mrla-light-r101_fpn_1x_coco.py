# MRLA paper, COCO: Mask R-CNN, MRLA-light ResNet-101-FPN, 1x: the R50 config with depth 101 and
# the MRLA-light R101 ImageNet weights (configs/mrla/mrla-light-r101_8xb32_in1k.py, or the
# official r101_mrlal converted with --target classifier).
_base_ = ['./mask-rcnn_mrla-light-r50_fpn_1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='checkpoints/mrla-light-r101_in1k.pth')))
