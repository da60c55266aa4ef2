# LA-layer paper, ImageNet pre-training for Table 4 (not a Table 2 row): LA-ResNeSt-50. Inside
# every split-attention conv the 3x3 conv (groups = radix 2) becomes an LA-layer; the split
# attention around it (BN, fc1/fc2, r-softmax) stays (Sec. 3.2: ResNeSt "also benefits from
# the introduction of LA-layers"). ResNeSt-50's deep stem (32-32-64), radix 2, reduction 4,
# avg-down shortcuts, as mmseg/mmdet's ResNeSt. Trained with the paper's LA schedule, not
# ResNeSt's own recipe. Produces checkpoints/la-resnest50_in1k.pth.
_base_ = ['./la-resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(
    backbone=dict(
        type='AttnResNeSt',
        stem_channels=64,
        radix=2,
        reduction_factor=4,
        avg_down_stride=True))
