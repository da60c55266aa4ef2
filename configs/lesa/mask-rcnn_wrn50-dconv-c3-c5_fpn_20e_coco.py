# LESA paper, Table 3 row "WR50 Dconv. 20": WRN-50-2 with DCNv1 in stages 2-4, 20 epochs.
_base_ = ['./mask-rcnn_r50-dconv-c3-c5_fpn_20e_coco.py']
model = dict(backbone=dict(type='AttnResNet', base_channels=128, expansion=2,
                           init_cfg=dict(checkpoint='torchvision://wide_resnet50_2')))
