# mmdet's ResNeXt-50 (32x4d) with its open-mmlab ImageNet weights (a baseline of the LA-layer
# paper's Table 3).
backbone = dict(type='ResNeXt', depth=50, groups=32, base_width=4,
                init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d'))
