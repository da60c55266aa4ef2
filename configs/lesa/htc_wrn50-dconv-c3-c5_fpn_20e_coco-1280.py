# LESA paper, Table 3 row "WR50 HTC Dconv.^h 20": the higher-resolution row, trained (multi-scale
# around 1280: 640-1280 or 1280-2560) and tested at 1280, as the official ^h configs.
_base_ = ['./htc_wrn50-dconv-c3-c5_fpn_20e_coco.py']
train_dataloader = {{_base_.lesa_htc_ms_1280.htc.train}}
val_dataloader = test_dataloader = {{_base_.lesa_htc_ms_1280.htc.test}}
