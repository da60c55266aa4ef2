# EANet, dilated ResNet-50, ADE20K, 160k iterations: the 80k config with the schedule of mmseg's
# _base_/schedules/schedule_160k.py (poly decay over 160k iterations, checkpoint and validation
# every 16k); the optimizer (SGD lr 0.01, momentum 0.9, wd 5e-4) is the same in both.
_base_ = ['./eanet_r50-d8_4xb4-80k_ade20k-512x512.py']
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=160000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000))
