# LA-layer paper, ImageNet (Table 2): LA-ResNet-101 (every 3x3 conv an LA-layer).
# Its last checkpoint, saved as checkpoints/la-resnet101_in1k.pth, is what the detection configs
# load.
_base_ = ['./la-resnet50_8xb64-warmup-coslr_in1k.py']
model = dict(backbone=dict(depth=101))
