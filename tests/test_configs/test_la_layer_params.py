"""LA-layer paper: the ImageNet configs' models against the paper's parameter counts (Tables 1-2).

Every model is built from its config in ``configs/la_layer/`` (``Config.fromfile`` +
``MODELS.build(cfg.model)`` after ``import mmattn``), so a change to a config, to ``AttnResNet``
or to ``LALayer`` that changes a network shows up here. Counts are of the whole classifier
(backbone + fc), as the paper's (ResNet-50: 25.5M).

Run as a script, it prints the README's table (parameters and multiply-adds of every LA-layer
backbone, measured on the built models)::

    .venv/bin/python tests/test_configs/test_la_layer_params.py          # ImageNet, 224 x 224
    .venv/bin/python tests/test_configs/test_la_layer_params.py --det --seg  # + COCO, ADE20K
    .venv/bin/python tests/test_configs/test_la_layer_params.py --all   # + every whole model
"""
import argparse
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', 'la_layer')
SCHEDULE = '_8xb64-warmup-coslr_in1k.py'

# config name (without SCHEDULE): (label, paper params in M (Table 1/2) or None, our exact count).
# The exact count makes the test fail on any change of the network; the paper check uses 2%.
IMAGENET = {
    'resnet50': ('ResNet-50', 25.5, 25_557_032),
    'resnet101': ('ResNet-101', 44.6, 44_549_160),
    'resnext50-32x4d': ('ResNeXt-50 (32x4d)', 25.0, 25_028_904),
    'resnext101-32x4d': ('ResNeXt-101 (32x4d)', 44.2, 44_177_704),
    'la-resnet50': ('LA-ResNet-50', 21.0, 20_844_344),
    'la-resnet101': ('LA-ResNet-101', 35.9, 35_661_816),
    'la-resnext50-32x4d': ('LA-ResNeXt-50 (32x4d)', 24.2, 24_445_128),
    'la-resnext101-32x4d': ('LA-ResNeXt-101 (32x4d)', 39.5, 43_078_216),
    # Pre-training for Table 4 only; the paper gives no count.
    'la-resnetv1c50': ('LA-ResNetV1c-50', None, 20_863_576),
    'la-resnetv1c101': ('LA-ResNetV1c-101', None, 35_681_048),
    'la-resnest50': ('LA-ResNeSt-50', None, 21_355_896),
    'la-resnest101': ('LA-ResNeSt-101', None, 36_719_640),
}
# Gaps that are the paper's, not the layer's (README, "The 101-layer rows"): LA-ResNeXt-101's
# 39.5M is less than ResNeXt-101 with every grouped 3x3 conv deleted (41.5M), so no LA-layer
# can reach it; only the exact count is asserted.
EXPLAINED_PARAM_GAPS = {'la-resnext101-32x4d'}
TOLERANCE = 0.02

# Detection backbones of Table 3 (config stem, label), measured by ``--det``.
DETECTION = [
    ('faster-rcnn_r50', 'ResNet-50'),
    ('faster-rcnn_la-r50', 'LA-ResNet-50'),
    ('faster-rcnn_r101', 'ResNet-101'),
    ('faster-rcnn_la-r101', 'LA-ResNet-101'),
    ('faster-rcnn_x50-32x4d', 'ResNeXt-50'),
    ('faster-rcnn_la-x50-32x4d', 'LA-ResNeXt-50'),
    ('faster-rcnn_x101-32x4d', 'ResNeXt-101'),
    ('faster-rcnn_la-x101-32x4d', 'LA-ResNeXt-101'),
    ('faster-rcnn_s50', 'ResNeSt-50'),
    ('faster-rcnn_s101', 'ResNeSt-101'),
]
# Segmentation backbones of Table 4 (config stem, label), measured by ``--seg``.
SEGMENTATION = [
    ('deeplabv3_r50', 'ResNetV1c-50'), ('deeplabv3_la-r50', 'LA-ResNetV1c-50'),
    ('deeplabv3_r101', 'ResNetV1c-101'), ('deeplabv3_la-r101', 'LA-ResNetV1c-101'),
    ('deeplabv3_s50', 'ResNeSt-50'), ('deeplabv3_la-s50', 'LA-ResNeSt-50'),
    ('deeplabv3_s101', 'ResNeSt-101'), ('deeplabv3_la-s101', 'LA-ResNeSt-101'),
]
# Table 3, Faster R-CNN and Cascade R-CNN FLOPs (G) of the whole detector, the paper's.
PAPER_DET_GFLOPS = {
    'ResNet-50': (180, 201), 'ResNet-101': (246, 274), 'ResNeXt-50': (279, 313),
    'ResNeXt-101': (406, 422), 'ResNeSt-50': (291, 336), 'ResNeSt-101': (422, 451),
    'LA-ResNet-50': (164, 173), 'LA-ResNet-101': (215, 226), 'LA-ResNeXt-50': (274, 301),
    'LA-ResNeXt-101': (384, 399),
}


def build_from_config(path, part=None):
    """``MODELS.build`` of ``cfg.model`` (or of ``cfg.model[part]``) in the config's scope."""
    import mmattn  # noqa: F401  (registers the backbones and LALayer)
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model if part is None else cfg.model[part]
    return MODELS.build(model_cfg)


def imagenet_config(name):
    return osp.join(CFG_DIR, name + SCHEDULE)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def count_macs(model, h, w):
    """Multiply-adds of one forward of an ``h x w`` image, the convention of
    ``tools/analysis_tools/la_layer_complexity.py`` and the paper's tables: every ``nn.Conv2d``
    and ``nn.Linear`` (MACs from its output size), each ``LALayer`` by ``LALayer.flops`` on the
    map it receives (its own convs are not counted twice); BN, ReLU, pooling, softmax and
    bilinear sampling are not counted. One forward of a zero image on the CPU (the counts depend
    on shapes only)."""
    import torch
    import torch.nn as nn

    from mmattn.models.layers.la_layer import LALayer
    total = [0]
    inside_la = set()
    for la in (m for m in model.modules() if isinstance(m, LALayer)):
        inside_la.update(id(m) for m in la.modules() if m is not la)

    def conv_hook(mod, inp, out):
        if id(mod) not in inside_la:
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * k

    def linear_hook(mod, inp, out):
        total[0] += out.numel() // out.shape[0] * mod.in_features

    def la_hook(mod, inp, out):
        total[0] += mod.flops(inp[0].shape[-2], inp[0].shape[-1])

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
        elif isinstance(mod, LALayer):
            handles.append(mod.register_forward_hook(la_hook))
    model.eval()  # not chained: mmdet's ResNet.train() returns None
    with torch.no_grad():
        x = torch.zeros(1, 3, h, w)
        if hasattr(model, 'extract_feat') and hasattr(model, 'head'):  # ImageClassifier
            feats = model.neck(model.backbone(x))
            model.head.fc(feats[-1])
        else:
            model(x)
    for hd in handles:
        hd.remove()
    return total[0]


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize('name', list(IMAGENET))
def test_imagenet_config_params(name):
    label, paper, exact = IMAGENET[name]
    n = num_params(build_from_config(imagenet_config(name)))
    assert n == exact, f'{label}: {n} parameters, recorded {exact} (README and metafile too)'
    if paper is not None and name not in EXPLAINED_PARAM_GAPS:
        gap = n / (paper * 1e6) - 1
        assert abs(gap) <= TOLERANCE, f'{label}: {n / 1e6:.3f}M vs paper {paper}M ({gap:+.1%})'


def test_la_layers_sit_where_table1_says():
    """Table 1: every bottleneck 3x3 conv of res2-res5 (all blocks, strided ones included)."""
    from mmattn.models.layers.la_layer import LALayer
    for name, blocks in (('la-resnet50', 16), ('la-resnext101-32x4d', 33), ('la-resnest50', 16)):
        model = build_from_config(imagenet_config(name))
        las = [m for m in model.modules() if isinstance(m, LALayer)]
        assert len(las) == blocks, name
        assert all((la.kernel_size, la.region_size, la.num_heads) == (3, 7, 8) for la in las)
        strided = [la for la in las if la.stride == 2]
        assert len(strided) == (0 if 'resnest' in name else 3), name  # ResNeSt: avg-pool stride


def test_built_model_macs_match_complexity_tool():
    """The hook count of a built config equals the analytic count of la_layer_complexity.py
    (small input, so the test stays fast; both are linear in the conv maps' sizes)."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    import la_layer_complexity as tool
    for name, (depth, groups, width) in (('la-resnet50', (50, 1, 64)),
                                         ('la-resnext50-32x4d', (50, 32, 4)),
                                         ('resnet50', (50, 1, 64))):
        model = build_from_config(imagenet_config(name))
        la_cfg = {} if name.startswith('la-') else None
        params, macs, _ = tool.count_network(depth, groups, width, la_cfg, size=64)
        assert num_params(model) == params, name
        assert count_macs(model, 64, 64) == macs, name


@pytest.mark.parametrize('imagenet,downstream', [
    ('la-resnet50', 'faster-rcnn_la-r50_fpn_ms-range-1x_coco.py'),
    ('la-resnest50', 'deeplabv3_la-s50-d8_4xb4-120e_ade20k-512x512.py'),
])
def test_downstream_config_loads_imagenet_checkpoint(imagenet, downstream, tmp_path):
    """The COCO/ADE20K LA configs read the ImageNet config's checkpoint (prefix 'backbone.')
    into their backbone, every tensor (LA-layers' offset heads included, not re-initialised)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    classifier = build_from_config(imagenet_config(imagenet))
    classifier.init_weights()
    ckpt = tmp_path / 'in1k.pth'
    torch.save({'state_dict': classifier.state_dict()}, ckpt)
    cfg = Config.fromfile(osp.join(CFG_DIR, downstream))
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    init_default_scope(cfg.default_scope)
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    ref, got = classifier.backbone.state_dict(), backbone.state_dict()
    assert set(ref) == set(got)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_one_tiny_forward():
    import torch
    model = build_from_config(imagenet_config('la-resnet50')).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 33, 33), mode='tensor')
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


# ---------------------------------------------------------------------------- table
def _gap(ours, paper):
    return f'{100 * (ours - paper) / paper:+.1f}%' if paper else ''


def main():
    parser = argparse.ArgumentParser(description='LA-layer configs: params and MACs')
    parser.add_argument('--det', action='store_true',
                        help='also the Table 3 detection backbones at 800 x 1333')
    parser.add_argument('--seg', action='store_true',
                        help='also the Table 4 DeepLabV3 (D8) backbones at 512 x 512')
    parser.add_argument('--all', action='store_true',
                        help='also the parameters of every config\'s whole model (metafile.yml)')
    args = parser.parse_args()
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    import la_layer_complexity as tool
    paper_flops = {label: tool.PAPER[key][1] for key in tool.PAPER
                   for label in [('LA-' if key[1] else '') + key[0]]}
    print('ImageNet configs (configs/la_layer/*' + SCHEDULE + '), whole classifier, 224 x 224')
    print(f'| {"model":24s} | {"params":>11s} | paper M | gap | GMACs | paper G | gap |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for name, (label, paper, _) in IMAGENET.items():
        model = build_from_config(imagenet_config(name))
        n = num_params(model)
        g = count_macs(model, 224, 224) / 1e9
        pg = paper_flops.get(label)
        print(f'| {label:24s} | {n:11,d} | {paper or "-"} | {_gap(n / 1e6, paper)} | {g:.3f} | '
              f'{pg or "-"} | {_gap(g, pg)} |')
    if args.det:
        print('\nDetection backbones of Table 3 (cfg.model.backbone of the Faster R-CNN configs;'
              ' the Cascade ones are the same), 800 x 1333, no fc')
        print('| backbone | params | GMACs | vs baseline | paper detector GFLOPs Faster / '
              'Cascade | paper difference |')
        print('|---|---:|---:|---:|---:|---:|')
        base = {}
        for stem, label in DETECTION:
            path = osp.join(CFG_DIR, stem + '_fpn_ms-range-1x_coco.py')
            model = build_from_config(path, 'backbone')
            n = num_params(model)
            g = count_macs(model, 800, 1333) / 1e9
            ref = label[3:] if label.startswith('LA-') else None
            base[label] = g
            pf, pc = PAPER_DET_GFLOPS[label]
            diff = diff_paper = ''
            if ref:
                diff = f'{g - base[ref]:+.1f}'
                rf, rc = PAPER_DET_GFLOPS[ref]
                diff_paper = f'{pf - rf:+d} / {pc - rc:+d}'
            print(f'| {label} | {n:,d} | {g:.1f} | {diff} | {pf} / {pc} | {diff_paper} |')
    if args.seg:
        print('\nSegmentation backbones of Table 4 (cfg.model.backbone of the DeepLabV3 configs, '
              'output stride 8), 512 x 512')
        print('| backbone | params | GMACs |')
        print('|---|---:|---:|')
        for stem, label in SEGMENTATION:
            path = osp.join(CFG_DIR, stem + '-d8_4xb4-120e_ade20k-512x512.py')
            model = build_from_config(path, 'backbone')
            print(f'| {label} | {num_params(model):,d} | '
                  f'{count_macs(model, 512, 512) / 1e9:.1f} |')


    if args.all:
        print('\nWhole models (cfg.model) of every config in configs/la_layer/')
        print('| config | params |')
        print('|---|---:|')
        for name in sorted(os.listdir(CFG_DIR)):
            if name.endswith('.py') and not name.startswith('_'):
                model = build_from_config(osp.join(CFG_DIR, name))
                print(f'| {name} | {num_params(model):,d} |')


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    sys.path.insert(0, REPO)
    main()
