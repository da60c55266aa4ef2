# MRLA paper, ImageNet: MRLA-light ResNet-50 with the official schedule (100 epochs, SGD 0.1 for
# batch 256, step every 30 epochs, 3 warm-up epochs) and drop path 0.2 on the MRLA branch only.
_base_ = ['./resnet50_8xb32-warmup_in1k.py']
model = dict(
    backbone=dict(type='MRLAResNet', mrla_type='light', depth=50, drop_path_rate=0.2))
