"""Extra parameters and multiply-adds of MRLA over ResNet, on the backbones of our configs.

The counts are those of the ledger (:func:`.count_params`, :func:`.count_flops`): MRLA-base's
attention-weighted sum of the value maps, which no counter sees, is counted once there.
Parameters: ``extra`` = MRLA backbone minus baseline backbone; ``lambda_`` = the ``lambda_t``
tensors (MRLA-light); ``extra - lambda_`` is what thop reports and what the paper quotes
("0.16M" for ResNet-50: thop counts parameters through hooks on Conv/BN/Linear modules and
never sees ``lambda_t``, a bare ``nn.Parameter``). ``mrla_module_params``: the ``mrla`` and
``bn_mrla`` submodules only (for MRLA-base the rest of ``extra`` is the deep stem).
"""
import re

from .flops import count_flops, in_convention
from .ledger import build
from .params import count_params

CFG_DIR = 'configs/mrla'
_MRLA_MODULE = re.compile(r'^layer\d+\.\d+\.(mrla|bn_mrla)$')


def config_pair(source, depth, mrla_type):
    """(baseline config, MRLA config): ImageNet configs, or (``source='coco'``, MRLA-light
    only) the Faster R-CNN configs (the baseline is ``configs/resnet/``), whose backbones
    every detector config shares."""
    if source == 'imagenet':
        return (f'{CFG_DIR}/resnet{depth}_8xb32-warmup_in1k.py',
                f'{CFG_DIR}/mrla-{mrla_type}-r{depth}_8xb32_in1k.py')
    if mrla_type != 'light':
        raise ValueError(f'source={source!r}: only MRLA-light has detection configs')
    return (f'{CFG_DIR}/../resnet/faster-rcnn_r{depth}_fpn_1x_coco.py',
            f'{CFG_DIR}/faster-rcnn_mrla-light-r{depth}_fpn_1x_coco.py')


def measure(source, depth, mrla_type, shape, with_flops=True):
    """One row: the two backbones' parameters (and multiply-adds at ``shape``)."""
    base_cfg, mrla_cfg = config_pair(source, depth, mrla_type)
    base, mrla = build(base_cfg, 'backbone'), build(mrla_cfg, 'backbone')
    nb, nm = count_params(base)['params'], count_params(mrla)['params']
    groups = count_params(mrla, dict(lambda_=r'lambda_t$', modules=r'\.(mrla|bn_mrla)\.'))
    row = dict(source=source, depth=depth, mrla_type=mrla_type, baseline_config=base_cfg,
               mrla_config=mrla_cfg, baseline_params=nb, mrla_params=nm, extra=nm - nb,
               lambda_=groups['groups']['lambda_'],
               extra_without_lambda=nm - nb - groups['groups']['lambda_'],
               mrla_module_params=groups['groups']['modules'])
    if with_flops:
        modules = [n for n, _ in mrla.named_modules() if _MRLA_MODULE.match(n)]
        fb, fm = count_flops(base, shape), count_flops(mrla, shape, modules=modules)
        value_sum = fm['analytic'].get('MRLABase')
        row.update(shape=tuple(shape), baseline_gmacs=fb['macs'] / 1e9,
                   mrla_gmacs=fm['macs'] / 1e9, extra_gmacs=(fm['macs'] - fb['macs']) / 1e9,
                   extra_thop_gflops=(in_convention(fm, 'thop') - in_convention(fb, 'thop'))
                   / 1e9,
                   mrla_module_gmacs=sum(fm['module_macs'].values()) / 1e9)
        if value_sum:
            row['weighted_value_sum_gmacs'] = (value_sum['total'] - value_sum['seen']) / 1e9
    return row


def format_row(r):
    text = (f"R{r['depth']} MRLA-{r['mrla_type']} ({r['source']}): params "
            f"{r['baseline_params']:,} -> {r['mrla_params']:,}; extra {r['extra']:,} "
            f"(lambda_t {r['lambda_']:,}; without lambda_t {r['extra_without_lambda']:,}; "
            f"in mrla/bn_mrla {r['mrla_module_params']:,})")
    if 'extra_gmacs' in r:
        h, w = r['shape']
        text += (f"\n    GMACs at {h}x{w}: {r['baseline_gmacs']:.3f} -> {r['mrla_gmacs']:.3f}; "
                 f"extra {r['extra_gmacs']:.3f} (in mrla/bn_mrla {r['mrla_module_gmacs']:.3f}); "
                 f"extra GFLOPs thop-style {r['extra_thop_gflops']:.3f}")
    if 'weighted_value_sum_gmacs' in r:
        text += (f"\n    of which MRLA-base's weighted value sum (element-wise): "
                 f"{r['weighted_value_sum_gmacs']:.4f} GMACs")
    return text
