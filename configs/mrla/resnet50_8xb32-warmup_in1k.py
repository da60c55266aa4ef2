# MRLA paper, ImageNet baseline: ResNet-50 under the MRLA schedule, so the comparison is like
# for like. The official resnet/train.py (`-b 256 --epochs 100 --warmup-epochs 3`, lr 0.1,
# SGD momentum 0.9, weight decay 1e-4, torchvision RandomResizedCrop/flip, resize 256 + centre
# crop 224, plain cross-entropy) is mmpretrain's resnet50_8xb32_in1k except the warm-up; its
# learning rate is set once per epoch:
#   epoch 0: 1e-4 (--warmup-lr), epochs 1, 2: 0.1 * epoch / 3, then 0.1 * 0.1 ** (epoch // 30).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/mmattn_imports.py']
param_scheduler = [
    # per epoch, not per iteration, as the official gen_lr(): 0.1 * 1e-3 = 1e-4 at epoch 0,
    # then 0.0334 and 0.0667 (official 0.0333, 0.0667), 0.1 from epoch 3. end=4 because
    # mmengine's LinearLR reaches its end factor at epoch end - 1 (end=3 would give
    # 1e-4, 0.05, 0.1: two warm-up epochs)
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=4),
    # begin=0, not 3: mmengine counts milestones from `begin`, so begin=3 would decay at
    # epochs 33/63/93 instead of the official 30/60/90 (epoch // 30)
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=100, milestones=[30, 60, 90],
         gamma=0.1),
]
