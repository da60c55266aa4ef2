# The official LESA_detection setting of htc_lesa-dcn-wrn50_fpn_20e_coco-1280, for exact
# reproduction of the official models: every image warped to a fixed 1280x1280 square
# (keep_ratio=False), single-scale training, and position tables of exactly the official fixed
# size (stride 16: 80, stride 32: 40) with no interpolation allowed (beyond_max='error').
_base_ = ['./htc_lesa-dcn-wrn50_fpn_20e_coco-1280.py']
train_dataloader = {{_base_.lesa_fixed_1280.htc.train}}
val_dataloader = test_dataloader = {{_base_.lesa_fixed_1280.htc.test}}
model = dict(backbone=dict(stage_ops=(None, None) + tuple(dict(op, max_size=n, beyond_max='error')
    for op, n in zip(_base_.model.backbone.stage_ops[2:], (80, 40)))))
