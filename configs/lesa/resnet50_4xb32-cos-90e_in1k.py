# LESA paper, Table 2/6 row "R50 Conv.": the paper reports torchvision's official ResNet-50
# (76.13 top-1); this config trains the same network under the LESA schedule for a like-for-like
# comparison: 90 epochs, 5 linear warm-up epochs, SGD with Nesterov momentum, cosine annealing
# from lr 0.05, batch 128 (4 GPUs x 32).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/mmattn_imports.py']
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=85, by_epoch=True, begin=5, end=90,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=1)
auto_scale_lr = dict(base_batch_size=128)
