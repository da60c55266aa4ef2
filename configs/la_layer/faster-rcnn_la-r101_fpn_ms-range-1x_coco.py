# LA-layer paper, COCO (Table 3): Faster R-CNN, LA-ResNet-101-FPN, ms-range 1x.
# Weights: configs/la_layer/la-resnet101_8xb64-warmup-coslr_in1k.py.
_base_ = ['./faster-rcnn_la-r50_fpn_ms-range-1x_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(
    checkpoint='checkpoints/la-resnet101_in1k.pth')))
