# LA-layer paper, COCO (Table 3): Faster R-CNN, LA-ResNeXt-50 (32x4d)-FPN, ms-range 1x.
# The LA-layers keep the grouped conv's groups=32. Weights:
# configs/la_layer/la-resnext50-32x4d_8xb64-warmup-coslr_in1k.py
# -> checkpoints/la-resnext50-32x4d_in1k.pth.
_base_ = ['./faster-rcnn_la-r50_fpn_ms-range-1x_coco.py']
model = dict(
    backbone=dict(
        type='AttnResNeXt',
        groups=32,
        base_width=4,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/la-resnext50-32x4d_in1k.pth',
            prefix='backbone.')))
