# LESA paper, Table 3 row "WR50 Conv. 12": Mask R-CNN with Wide ResNet-50-2 (bottleneck width
# x2, torchvision weights), otherwise as mask-rcnn_r50_fpn_1x_coco.py.
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py']
model = dict(backbone=dict(type='AttnResNet', base_channels=128, expansion=2,
                           init_cfg=dict(checkpoint='torchvision://wide_resnet50_2')))
