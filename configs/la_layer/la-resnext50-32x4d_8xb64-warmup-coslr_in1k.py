# LA-layer paper, ImageNet (Tables 1-2): LA-ResNeXt-50 (32x4d). Every grouped 3x3 conv becomes an
# LA-layer that keeps the conv's groups=32 in q/k/v and the offset net's 3x3 conv (an ungrouped
# LA-layer gives 50.0M parameters against the paper's 24.2M, see README).
# Its last checkpoint, saved as checkpoints/la-resnext50-32x4d_in1k.pth, is what the detection
# configs load.
_base_ = ['./la-resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(type='AttnResNeXt', groups=32, base_width=4))
