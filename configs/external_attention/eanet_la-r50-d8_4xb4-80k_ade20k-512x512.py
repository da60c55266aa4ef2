# EANet's EAHead on an LA backbone (LA-layer paper's operator): every bottleneck 3x3 conv of the
# dilated ResNetV1c-50 becomes an LALayer with that conv's dilation (configs/_base_/backbones/
# la-r50-d8.py; stage 3: 1, then 2; stage 4: 2, 8, 16 from the official multi-grid, inherited
# with the norms, heads, data and 80k schedule from the plain EANet config), so the operator is
# the only difference. ImageNet weights: the checkpoint of
# configs/la_layer/la-resnetv1c50_8xb64-warmup-coslr_in1k.py, checkpoints/la-resnetv1c50_in1k.pth.
_base_ = ['./eanet_r50-d8_4xb4-80k_ade20k-512x512.py', '../_base_/backbones/la-r50-d8.py']
model = dict(backbone={{_base_.backbone}})
