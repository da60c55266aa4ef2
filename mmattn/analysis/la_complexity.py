"""The LA-layer paper's complexity claims (Tables 1-4) measured on our configs.

Every figure comes from the counters the ledger uses (:func:`.ledger.build`,
:func:`.count_params`, :func:`.count_flops`: the LALayer's declared cost for its element-wise
products) and the paper's figures from the ledger's data file (``docs/paper_tables/
la_layer.yml``), so this table, ``docs/paper_tables.md`` and ``tests/test_configs/
test_la_layer_params.py`` cannot disagree.
"""
from .flops import count_flops
from .ledger import build, load_papers
from .params import count_params

CFG_DIR = 'configs/la_layer'
SCHEDULE = '_8xb64-warmup-coslr_in1k.py'
# (config stem, label): ImageNet (whole classifier, 224x224) ...
IMAGENET = [
    ('resnet50', 'ResNet-50'), ('resnet101', 'ResNet-101'),
    ('resnext50-32x4d', 'ResNeXt-50 (32x4d)'), ('resnext101-32x4d', 'ResNeXt-101 (32x4d)'),
    ('la-resnet50', 'LA-ResNet-50'), ('la-resnet101', 'LA-ResNet-101'),
    ('la-resnext50-32x4d', 'LA-ResNeXt-50 (32x4d)'),
    ('la-resnext101-32x4d', 'LA-ResNeXt-101 (32x4d)'),
    ('la-resnetv1c50', 'LA-ResNetV1c-50'), ('la-resnetv1c101', 'LA-ResNetV1c-101'),
    ('la-resnest50', 'LA-ResNeSt-50'), ('la-resnest101', 'LA-ResNeSt-101'),
]
# ... Table 3's detection backbones (800x1333; the Cascade configs share the Faster ones') ...
DETECTION = [
    ('r50', 'ResNet-50'), ('la-r50', 'LA-ResNet-50'), ('r101', 'ResNet-101'),
    ('la-r101', 'LA-ResNet-101'), ('x50-32x4d', 'ResNeXt-50'), ('la-x50-32x4d', 'LA-ResNeXt-50'),
    ('x101-32x4d', 'ResNeXt-101'), ('la-x101-32x4d', 'LA-ResNeXt-101'), ('s50', 'ResNeSt-50'),
    ('s101', 'ResNeSt-101'),
]
# ... and Table 4's segmentation backbones (DeepLabV3, output stride 8, 512x512)
SEGMENTATION = [
    ('r50', 'ResNetV1c-50'), ('la-r50', 'LA-ResNetV1c-50'), ('r101', 'ResNetV1c-101'),
    ('la-r101', 'LA-ResNetV1c-101'), ('s50', 'ResNeSt-50'), ('la-s50', 'LA-ResNeSt-50'),
    ('s101', 'ResNeSt-101'), ('la-s101', 'LA-ResNeSt-101'),
]
# other readings of the paper, to show what the defaults rule out: (label, config stem, the
# LALayer options changed)
ALTERNATIVES = [
    ('LA-ResNet-50, stride_mode=pool_after', 'la-resnet50', dict(stride_mode='pool_after')),
    ('LA-ResNet-50, offset_hidden_ratio=1', 'la-resnet50', dict(offset_hidden_ratio=1.0)),
]


def imagenet_config(stem):
    return f'{CFG_DIR}/{stem}{SCHEDULE}'


def detection_config(stem, detector='faster-rcnn'):
    return f'{CFG_DIR}/{detector}_{stem}_fpn_ms-range-1x_coco.py'


def segmentation_config(stem):
    return f'{CFG_DIR}/deeplabv3_{stem}-d8_4xb4-120e_ade20k-512x512.py'


def paper_figures():
    """``{config: paper figures}`` of every LA-layer row of the ledger's data file."""
    paper = next(p for p in load_papers() if p['paper'] == 'LA-layer')
    out = {}
    for table in paper['tables']:
        for row in table['rows']:
            if row.get('config'):
                out.setdefault(row['config'], {}).update(row['paper'])
    return out


def measure(config, hw, part='model', la_options=None):
    """``dict(params, macs)`` of the config's model (or backbone) at ``hw``; ``la_options``
    change every LALayer of the backbone (the other readings)."""
    if la_options:
        from .build import build_model, load_cfg
        cfg = load_cfg(config)
        bb = cfg.model.backbone
        bb.stage_ops = tuple(None if op is None else dict(op, **la_options)
                             for op in bb.stage_ops)
        model = build_model(cfg, part=None if part == 'model' else part)
        model.eval()
    else:
        model = build(config, part)
    return dict(params=count_params(model)['params'], macs=count_flops(model, hw)['macs'])


def per_block_saving(width, groups, hw=(14, 14)):
    """What one LALayer saves against the 3x3 conv it replaces (C -> C, stride 1):
    ``dict(conv_params, conv_macs, la_params, la_macs)``."""
    from mmattn.registry import MODELS
    layer = MODELS.build(dict(type='LALayer', in_channels=width, out_channels=width,
                              groups=groups))
    layer.eval()
    conv_params = width // groups * width * 9
    return dict(conv_params=conv_params, conv_macs=conv_params * hw[0] * hw[1],
                la_params=count_params(layer)['params'],
                la_macs=count_flops(layer, hw, in_channels=width)['macs'])


def consistency():
    """The paper's 101-layer rows against its 50-layer rows: a 101-layer net is its 50-layer
    sibling plus 17 res4 blocks at 14x14, so the paper's extra saving / 17 is what each added
    res4 LA-layer must save. One dict per network and unit."""
    paper = paper_figures()
    rows = []
    for stem50, stem101, width, groups in (('resnet50', 'resnet101', 256, 1),
                                           ('resnext50-32x4d', 'resnext101-32x4d', 512, 32)):
        block = per_block_saving(width, groups)
        for unit, key, divisor in (('k params', 'params', 1e3), ('M MACs', 'macs', 1e6)):
            pkey = 'params_m' if key == 'params' else 'flops_g'

            def saving(stem):
                return (paper[imagenet_config(stem)][pkey] -
                        paper[imagenet_config('la-' + stem)][pkey])
            rows.append(dict(
                network=stem101, unit=unit,
                need=(saving(stem101) - saving(stem50)) / 17 * 1e3,
                conv=block[f'conv_{key}'] / divisor,
                ours=(block[f'conv_{key}'] - block[f'la_{key}']) / divisor))
    return rows


def gap(ours, paper):
    return f'{100 * (ours - paper) / paper:+.1f}%' if paper else ''


def bench_module(op, channels, seed=0):
    """``op='la'``: an LALayer with its defaults; ``'conv'``: the 3x3 conv it replaces."""
    import torch

    from mmattn.registry import MODELS
    torch.manual_seed(seed)
    if op == 'conv':
        return torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    return MODELS.build(dict(type='LALayer', in_channels=channels, out_channels=channels))


def saved_bytes(module, x):
    """Bytes of the tensors autograd keeps for the backward of ``module(x)`` (weights
    excluded, each storage once)."""
    import torch
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    del out
    return sum(seen.values())
