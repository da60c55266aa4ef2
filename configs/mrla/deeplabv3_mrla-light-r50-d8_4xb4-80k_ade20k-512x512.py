# Extension (no paper row): DeepLabV3 on ADE20K, MRLA-light ResNet-50-D8 (7x7 stem, as the MRLA
# ImageNet checkpoint), mmseg's 80k schedule. The dilation and SyncBN of the mmseg baseline are
# kept; its norms train (norm_eval=False, nothing frozen), as every mmseg backbone.
_base_ = [
    '../resnet/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/backbones/mrla-light-r50.py'
]
model = dict(backbone=dict(_base_.backbone, frozen_stages=-1, norm_eval=False))
