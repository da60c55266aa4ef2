# MRLA paper, ImageNet: MRLA-base (quadratic, softmax over all earlier layers of a stage)
# ResNet-50, official schedule.
_base_ = ['./mrla-light-r50_8xb32_in1k.py']
model = dict(backbone=dict(mrla_type='base'))
