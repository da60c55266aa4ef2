# LA-layer paper, ADE20K (Table 4): DeepLabV3, LA-ResNeSt-50-D8, 120 epochs.
# The baseline's ResNeSt-50-D8 with the 3x3 conv inside every split-attention conv an LA-layer
# (split attention kept around it). Weights:
# configs/la_layer/la-resnest50_8xb64-warmup-coslr_in1k.py -> checkpoints/la-resnest50_in1k.pth.
_base_ = ['./deeplabv3_s50-d8_4xb4-120e_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='AttnResNeSt',
        stage_ops=(dict(type='LALayer'), ) * 4,
        op_blocks='all',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/la-resnest50_in1k.pth',
            prefix='backbone.')))
