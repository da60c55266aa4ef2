# MRLA-light ResNet-50 for detection (MRLA paper, COCO). Every bottleneck gets the MRLA-light
# branch after its residual sum (official placement, mmdetection/mmdet/models/backbones/
# resnet_mrlal.py). Official backbone settings, written out although the mmdet baselines already
# have them: frozen_stages=1 (stem and layer1, MRLA modules included), norm_eval=True (bn_mrla
# included), and no drop path (the official detection block has its DropPath commented out).
# Weights: checkpoints/mrla-light-r50_in1k.pth is either the checkpoint of
# configs/mrla/mrla-light-r50_8xb32_in1k.py or an official one converted with
# `tools/model_converters/mrla_to_mmattn.py SRC DST --target classifier`; both hold
# ImageClassifier keys, hence prefix='backbone.' (without it mmengine would load no key into the
# backbone and only warn).
# lambda_init='zeros' (official: randn) only sets lambda_t before the checkpoint, which holds
# lambda_t, overwrites it. Where nothing loads lambda_t (no checkpoint, as in the one-step test of
# every config, or a plain ResNet checkpoint), norm_eval=True leaves every bn_mrla at its running
# statistics 0/1, i.e. the identity, and a randn lambda_t multiplies the features by up to
# |1 + lambda| per block until they blow up (configs/mrla/README.md, "Initialisation of
# lambda_t"); zeros start the recurrent term at 0.
backbone = dict(
    type='MRLAResNet',
    mrla_type='light',
    drop_path_rate=0.,
    frozen_stages=1,
    norm_eval=True,
    mrla_cfg=dict(lambda_init='zeros'),
    init_cfg=dict(type='Pretrained', prefix='backbone.',
                  checkpoint='checkpoints/mrla-light-r50_in1k.pth'))
