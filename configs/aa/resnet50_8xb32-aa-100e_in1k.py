# AA paper, ImageNet baseline ResNet-50 under the paper's schedule (appendix A.2): 100 epochs,
# SGD momentum 0.9, weight decay 1e-4, lr 0.128 per 256 images with a linear warm-up over the
# first 5% of training (5 epochs), divided by 10 at epochs 30, 60, 80 and 90; Inception-style
# augmentation (RandomResizedCrop + flip, mmpretrain's standard pipeline).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/mmattn_imports.py']
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.128, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # begin=0, not 5: mmengine counts milestones from `begin` (begin=5 drops at 35/65/85/95)
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=100, milestones=[30, 60, 80, 90],
         gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
auto_scale_lr = dict(base_batch_size=256)
model = dict(backbone=dict(_delete_=True, type='AttnResNet', depth=50, out_indices=(3, ),
                           style='pytorch'))
