# LA-layer paper, ADE20K (Table 4) baseline: DeepLabV3, ResNetV1c-50-D8 (mmseg's DeepLabV3
# backbone: deep stem, dilated res4/res5, output stride 8).
# Sec. 4.3: "120 epochs on the ADE20K training set", "a resolution of 512x2048". In mmseg terms:
# - 120 epochs of the 20,210 training images at batch 16 (4 GPUs x 4) = 120 * 20210 / 16
#   = 151,575 iterations (mmseg's 160k schedule is 126.7 epochs), poly decay over them;
# - 512x2048 is mmseg's ADE20K scale (2048, 512): training images are resized around it
#   (ratio 0.5-2.0) and cropped to 512x512, testing resizes to (2048, 512) (whole image).
# Everything else is mmseg's DeepLabV3 (SGD lr 0.01, SyncBN, auxiliary FCN head).
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-160k_ade20k-512x512.py',
    '../_base_/mmattn_imports.py'
]
max_iters = 151575  # 120 epochs x 20,210 images / batch 16
model = dict(
    # The weights move from `pretrained` to the backbone's init_cfg (same effect), where every
    # config of this folder names them.
    pretrained=None,
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=16000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000))
