# LA-layer paper, ImageNet baseline: ResNet-50 under the paper's schedule (Sec. 4.1, taken from
# CoTNet): SGD, batch 512 (8 GPUs x 64), lr 0.4, momentum 0.9, weight decay 1e-4, 100 epochs,
# linear warm-up over the first 5 epochs, then cosine decay. Every LA ImageNet config inherits
# this file, so baseline and LA models differ only in the backbone.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/mmattn_imports.py']
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.4, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    # The paper gives no start value; 0.001 x 0.4 is a near-zero linear ramp.
    dict(type='LinearLR', start_factor=0.001, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=95, eta_min=0, by_epoch=True, begin=5, end=100,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
auto_scale_lr = dict(base_batch_size=512)
