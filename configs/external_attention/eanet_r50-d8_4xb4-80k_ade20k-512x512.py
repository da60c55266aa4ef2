# EANet (External Attention paper, segmentation network of the official model_torch.py) on
# ADE20K: dilated ResNet-50 (ResNetV1c, output stride 8, the official multi-grid on the last
# stage) and EAHead: ConvModule 3x3 2048 -> 512, external-attention block (S = 64 memories),
# ConvModule 3x3 512 -> 256, Dropout2d(0.1), 150 classes. mmseg's usual auxiliary FCNHead on
# stage 3, the data pipeline (512x512 crops) and the 80k schedule all come unchanged from mmseg's
# DeepLabV3 ADE20K config; only the decode head and the multi-grid differ.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py',
    '../_base_/mmattn_imports.py'
]
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # the ImageNet weights as a backbone init_cfg instead of mmseg's model-level `pretrained`
    pretrained=None,
    backbone=dict(
        # Official multi-grid: stage 4 has dilation 4 and grids (1, 2, 4), the first block
        # contracted to 2 and the others at 4 * grid, i.e. dilations (2, 8, 16). mmseg's
        # `multi_grid` holds the blocks' dilations themselves (res_layer.py:
        # `dilation=multi_grid[i]`), so (1, 2, 4) here would give (1, 2, 4).
        multi_grid=(2, 8, 16),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')),
    decode_head=dict(
        _delete_=True,
        type='EAHead',
        in_channels=2048,
        in_index=3,
        ea_channels=512,
        channels=256,
        memory_size=64,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
