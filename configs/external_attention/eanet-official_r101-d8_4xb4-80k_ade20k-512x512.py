# EANet with the layout of the official network (github.com/MenghaoGuo/EANet, model_torch.py),
# so that its released weights load: the ResNet-101's deep stem is 3->64->64->128
# (stem_channels=128; mmseg's ResNetV1c stem is 3->32->32->64), the logits are upsampled with
# align_corners=True, and there is no auxiliary head. The backbone starts from the official
# checkpoint converted with
#   python tools/model_converters/eanet_to_mmattn.py eanet_voc.pth \
#       checkpoints/eanet-r101_official_backbone.pth --target backbone --config THIS_CONFIG
# (the released model is trained on Pascal VOC, 21 classes; `--target segmentor` converts the
# whole network, which equals the official one with model.decode_head.num_classes=21:
# tests/test_converters/test_eanet_converter.py). Everything else as
# eanet_r101-d8_4xb4-80k_ade20k-512x512.py.
_base_ = ['./eanet_r101-d8_4xb4-80k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        stem_channels=128,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/eanet-r101_official_backbone.pth')),
    decode_head=dict(align_corners=True),
    auxiliary_head=None)
