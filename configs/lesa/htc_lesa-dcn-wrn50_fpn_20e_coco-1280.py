# LESA paper, Table 3/4 row "WR50 HTC LESA^h 20": the higher-resolution LESA row, trained
# (multi-scale around 1280: 640-1280 or 1280-2560) and tested at 1280, as the official ^h
# configs; position tables sized for the largest training scale (2560 / 16 = 160, / 32 = 80).
_base_ = ['./htc_lesa-dcn-wrn50_fpn_20e_coco.py']
train_dataloader = {{_base_.lesa_htc_ms_1280.htc.train}}
val_dataloader = test_dataloader = {{_base_.lesa_htc_ms_1280.htc.test}}
model = dict(backbone=dict(stage_ops=(
    None, None, dict(_base_.model.backbone.stage_ops[2], max_size=160),
    dict(_base_.model.backbone.stage_ops[3], max_size=80))))
