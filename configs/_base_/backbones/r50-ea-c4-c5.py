# ResNet-50 with an external-attention block (ExternalAttentionBlock, S = 64) after conv3 of
# every bottleneck of stages 3-4 (c4, c5): a plugin of mmdet's/mmseg's stock ResNet, so the
# backbone's own weights (torchvision / open-mmlab) still load. The paper gives no detection
# setting for this placement.
# act_cfg=None + zero_init=True make each block an exact identity at initialisation (the output
# norm's weight starts at 0 and no ReLU follows, since `after_conv3` sits before the bottleneck's
# residual add), so the ImageNet weights load with the network's function unchanged; the
# official block's trailing ReLU would alter a pretrained network. Under mmdet's norm_eval=True
# the block's BN keeps its initial statistics and acts as a learned affine.
backbone = dict(plugins=[
    dict(cfg=dict(type='ExternalAttentionBlock', act_cfg=None, zero_init=True),
         stages=(False, False, True, True), position='after_conv3')
])
