# MRLA paper, ImageNet: MRLA-light ResNet-50 (official `resnet50_mrlal` in
# resnet/models/resnet_mrla_light.py; `resnet50_mrla` in resnet_mrla.py, the README's command,
# is the earlier version whose submodule is `mrla.mla`) with the official schedule of
# resnet50_8xb32-warmup_in1k.py (100 epochs, SGD 0.1 for batch 256, x0.1 at epochs 30/60/90,
# 3 warm-up epochs).
# drop_path_rate=0.2: the official `--drop-path 0.2` (README command), a constant DropPath on
# the MRLA branch of every block (`out + drop_path(bn_mrla(mrla(out, identity)))`); the residual
# branch is never dropped. Stem: the plain 7x7 conv of torchvision, as the official light model.
# The checkpoint this trains (ImageClassifier keys, `backbone.*`) is what the detection configs
# load as checkpoints/mrla-light-r50_in1k.pth (init_cfg prefix='backbone.').
_base_ = ['./resnet50_8xb32-warmup_in1k.py']
model = dict(
    backbone=dict(type='MRLAResNet', mrla_type='light', depth=50, drop_path_rate=0.2))
