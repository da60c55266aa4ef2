# LA-layer paper, COCO (Table 3): Faster R-CNN, LA-ResNeXt-101 (32x4d)-FPN, ms-range 1x.
# Weights: configs/la_layer/la-resnext101-32x4d_8xb64-warmup-coslr_in1k.py.
_base_ = ['./faster-rcnn_la-x50-32x4d_fpn_ms-range-1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='checkpoints/la-resnext101-32x4d_in1k.pth')))
