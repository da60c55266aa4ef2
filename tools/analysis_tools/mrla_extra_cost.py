"""Extra parameters and FLOPs of MRLA over ResNet, measured on the backbones of our configs.

    python tools/analysis_tools/mrla_extra_cost.py [--source imagenet|coco]
        [--depths 50 101] [--types light base] [--shape 224 224] [--no-flops]

For every depth and MRLA type the backbone of the MRLA config and of its baseline config is
built (``init_cfg`` dropped: nothing is loaded) and compared:

* ``--source imagenet`` (default): ``configs/mrla/mrla-{type}-r{depth}_8xb32_in1k.py`` against
  ``configs/mrla/resnet{depth}_8xb32-warmup_in1k.py``;
* ``--source coco``: ``configs/mrla/faster-rcnn_mrla-light-r{depth}_fpn_1x_coco.py`` against
  ``configs/resnet/faster-rcnn_r{depth}_fpn_1x_coco.py`` (MRLA-light only; every detector config
  of the folder has the same backbone).

Parameters (exact): ``extra`` = MRLA backbone minus baseline backbone; ``lambda`` = the
``lambda_t`` tensors (MRLA-light); ``extra - lambda`` is what thop reports and what the paper
quotes ("0.16M" for ResNet-50): thop counts parameters through hooks on Conv/BN/Linear modules
and never sees ``lambda_t``, a bare ``nn.Parameter``. ``mrla modules`` = the parameters of the
``mrla`` and ``bn_mrla`` submodules only (for MRLA-base the rest of ``extra`` is the deep stem).

FLOPs: mmengine's ``FlopAnalyzer`` (fvcore's counting: one multiply-add = one FLOP; convs, BN,
linear, einsum/matmul; element-wise ops such as the sigmoid gate, ``lambda * identity``, the
sums and the global pooling are not counted and listed under "uncounted ops"), one image of
``--shape``, model in eval mode. ``mrla GFLOPs`` = the part inside ``mrla`` + ``bn_mrla``.
For MRLA-base the quadratic part, the attention-weighted sum of the value maps
(``torch.addcmul``, uncounted by FlopAnalyzer), is counted separately: block t of a stage does
t multiply-adds per element of its value map (``weighted value sum``).
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional

import torch

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, REPO)

CFG_DIR = osp.join(REPO, 'configs', 'mrla')


def config_pair(source: str, depth: int, mrla_type: str):
    """(baseline config, MRLA config) paths."""
    if source == 'imagenet':
        return (osp.join(CFG_DIR, f'resnet{depth}_8xb32-warmup_in1k.py'),
                osp.join(CFG_DIR, f'mrla-{mrla_type}-r{depth}_8xb32_in1k.py'))
    if mrla_type != 'light':
        raise ValueError('--source coco: only MRLA-light has detection configs')
    return (osp.join(CFG_DIR, '..', 'resnet', f'faster-rcnn_r{depth}_fpn_1x_coco.py'),
            osp.join(CFG_DIR, f'faster-rcnn_mrla-light-r{depth}_fpn_1x_coco.py'))


def build_backbone(config: str) -> torch.nn.Module:
    """The config's ``model.backbone``, built in the config's scope, without pretrained
    weights."""
    from mmengine.config import Config

    from mmattn.apis import build_model_from_cfg
    cfg = Config.fromfile(config)
    cfg.model.backbone.pop('init_cfg', None)
    return build_model_from_cfg(cfg, 'backbone')


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def mrla_params(backbone: torch.nn.Module) -> Dict[str, int]:
    """Parameters of the ``mrla`` / ``bn_mrla`` submodules and of the ``lambda_t`` tensors."""
    lam = sum(p.numel() for n, p in backbone.named_parameters() if n.endswith('lambda_t'))
    modules = sum(p.numel() for n, p in backbone.named_parameters()
                  if '.mrla.' in n or '.bn_mrla.' in n)
    return dict(lambda_=lam, modules=modules)


def weighted_value_sum_macs(backbone: torch.nn.Module, shape) -> int:
    """Multiply-adds of MRLA-base's ``sum_s a_s * v_s``: t per value element at block t."""
    from mmattn.models.layers.mrla import MRLABase
    total = [0]

    def hook(module, args, output):
        values = args[2] if len(args) > 2 else ()
        total[0] += (len(values) + 1) * output[2][0].numel()  # output = (out, k, v)

    handles = [m.register_forward_hook(hook) for m in backbone.modules()
               if isinstance(m, MRLABase)]
    try:
        backbone.eval()
        with torch.no_grad():
            backbone(torch.randn(1, 3, *shape))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def flops(backbone: torch.nn.Module, shape) -> Dict[str, object]:
    """FlopAnalyzer total, the share of the mrla/bn_mrla submodules, the uncounted ops."""
    from mmengine.analysis import FlopAnalyzer
    backbone.eval()
    analyzer = FlopAnalyzer(backbone, (torch.randn(1, 3, *shape), ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    by_module = analyzer.by_module()
    mrla = sum(v for k, v in by_module.items()
               if k.split('.')[-1] in ('mrla', 'bn_mrla') and k.count('.') == 2)
    return dict(total=analyzer.total(), mrla=mrla, uncounted=Counter(analyzer.unsupported_ops()))


def measure(source: str, depth: int, mrla_type: str, shape, with_flops: bool = True) -> dict:
    base_cfg, mrla_cfg = config_pair(source, depth, mrla_type)
    base, mrla = build_backbone(base_cfg), build_backbone(mrla_cfg)
    extra = num_params(mrla) - num_params(base)
    p = mrla_params(mrla)
    row = dict(source=source, depth=depth, mrla_type=mrla_type,
               baseline_config=osp.relpath(base_cfg, REPO),
               mrla_config=osp.relpath(mrla_cfg, REPO),
               baseline_params=num_params(base), mrla_params=num_params(mrla),
               extra=extra, lambda_=p['lambda_'], extra_without_lambda=extra - p['lambda_'],
               mrla_module_params=p['modules'])
    if with_flops:
        with torch.no_grad():
            fb, fm = flops(base, shape), flops(mrla, shape)
        uncounted = fm['uncounted'] - fb['uncounted']
        row.update(shape=tuple(shape), baseline_gflops=fb['total'] / 1e9,
                   mrla_gflops=fm['total'] / 1e9,
                   extra_gflops=(fm['total'] - fb['total']) / 1e9,
                   mrla_module_gflops=fm['mrla'] / 1e9,
                   uncounted_extra_ops=dict(sorted(uncounted.items())))
        if mrla_type == 'base':
            row['weighted_value_sum_gmacs'] = weighted_value_sum_macs(mrla, shape) / 1e9
    return row


def format_row(r: dict) -> str:
    text = (f"R{r['depth']} MRLA-{r['mrla_type']} ({r['source']}): params "
            f"{r['baseline_params']:,} -> {r['mrla_params']:,}; extra {r['extra']:,} "
            f"(lambda_t {r['lambda_']:,}; without lambda_t {r['extra_without_lambda']:,}; "
            f"in mrla/bn_mrla {r['mrla_module_params']:,})")
    if 'extra_gflops' in r:
        h, w = r['shape']
        text += (f"\n    GFLOPs at {h}x{w}: {r['baseline_gflops']:.3f} -> {r['mrla_gflops']:.3f}; "
                 f"extra {r['extra_gflops']:.3f} (in mrla/bn_mrla {r['mrla_module_gflops']:.3f})"
                 f"; uncounted extra ops: {r['uncounted_extra_ops']}")
    if 'weighted_value_sum_gmacs' in r:
        text += (f"\n    MRLA-base weighted value sum (uncounted above): "
                 f"{r['weighted_value_sum_gmacs']:.4f} GMACs")
    return text


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--source', choices=('imagenet', 'coco'), default='imagenet')
    p.add_argument('--depths', type=int, nargs='+', default=[50, 101])
    p.add_argument('--types', nargs='+', choices=('light', 'base'), default=None,
                   help='default: light and base (imagenet), light (coco)')
    p.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    p.add_argument('--no-flops', action='store_true', help='parameters only (fast)')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    types = args.types or (['light', 'base'] if args.source == 'imagenet' else ['light'])
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    rows = []
    for depth in args.depths:
        for mrla_type in types:
            row = measure(args.source, depth, mrla_type, args.shape, not args.no_flops)
            print(format_row(row), flush=True)
            rows.append(row)
    return rows


if __name__ == '__main__':
    main()
