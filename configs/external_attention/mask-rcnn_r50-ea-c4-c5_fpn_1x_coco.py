# Mask R-CNN R50-FPN 1x with an external-attention block (ExternalAttentionBlock, S = 64) after
# conv3 of every bottleneck of stages 3-4 (c4, c5) of mmdet's stock ResNet-50: the three lines
# below are all that is added to the baseline (mask-rcnn_r50_fpn_1x_coco.py). The paper gives no
# detection setting for this placement.
# act_cfg=None + zero_init=True make each block an exact identity at initialisation (the output
# norm's weight starts at 0 and no ReLU follows, since `after_conv3` sits before the bottleneck's
# residual add), so the torchvision ImageNet weights load with the network's function unchanged;
# the official block's trailing ReLU would alter a pretrained network. Under mmdet's
# norm_eval=True the block's BN keeps its initial statistics and acts as a learned affine.
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py']
model = dict(backbone=dict(plugins=[dict(
    cfg=dict(type='ExternalAttentionBlock', act_cfg=None, zero_init=True),
    stages=(False, False, True, True), position='after_conv3')]))
