# MRLA paper, ImageNet baseline: ResNet-50 under the MRLA schedule (100 epochs, SGD lr 0.1 for
# batch 256, x0.1 every 30 epochs, 3 linear warm-up epochs), so the comparison is like for like.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/mmattn_imports.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=3, milestones=[30, 60, 90], gamma=0.1),
]
