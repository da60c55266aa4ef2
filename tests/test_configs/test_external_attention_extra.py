"""External Attention configs beyond the one-step run of test_every_config.py.

- The EANet backbones have the official dilations (stage 4: 2, 8, 16).
- The EA plugin config leaves a stock mmdet ResNet-50's weights loadable (only the plugin's keys
  are missing) and, as configured (zero_init, no trailing activation), the loaded network
  computes exactly what the stock one does.
- The EAHead parameter count of the README table is what the config builds.
- The EAMLP config builds an mmpretrain ImageClassifier that runs forward and loss at a small
  size.
"""
import os.path as osp
import re

import pytest
import torch

from conftest import REPO

import mmattn  # noqa: F401,E402  (registers mmattn; mmpretrain imports through its stand-in)

CFG_DIR = osp.join(REPO, 'configs', 'external_attention')


def _build(cfg_dict, scope):
    """Builds a model config dict in ``scope`` (mmdet / mmseg / mmpretrain)."""
    from mmengine.registry import MODELS, DefaultScope
    if scope == 'mmdet':
        from mmdet.utils import register_all_modules
    elif scope == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg_dict)


def _cfg(name):
    from mmengine.config import Config
    return Config.fromfile(osp.join(CFG_DIR, name))


def _n(module):
    return sum(p.numel() for p in module.parameters())


def test_ea_plugin_keeps_stock_resnet50_loadable():
    ea_cfg = _cfg('mask-rcnn_r50-ea-c4-c5_fpn_1x_coco.py')
    stock_cfg = _cfg('../resnet/mask-rcnn_r50_fpn_1x_coco.py')
    assert ea_cfg.model.backbone.init_cfg.type == 'Pretrained'  # torchvision://resnet50
    ea_bb_cfg, stock_bb_cfg = ea_cfg.model.backbone.copy(), stock_cfg.model.backbone.copy()
    ea_bb_cfg.init_cfg = stock_bb_cfg.init_cfg = None  # nothing downloaded; mmdet's own init
    torch.manual_seed(0)
    stock = _build(stock_bb_cfg, 'mmdet')
    stock.init_weights()
    ea = _build(ea_bb_cfg, 'mmdet')
    ea.init_weights()  # mmdet's Kaiming / constant init first, then the blocks' own init

    # one block after conv3 of every bottleneck of stages 3-4 (6 + 3 in ResNet-50)
    blocks = {n: m for n, m in ea.named_modules() if type(m).__name__ == 'ExternalAttentionBlock'}
    assert len(blocks) == 9
    assert all(n.startswith(('layer3.', 'layer4.')) and n.endswith('.ea_block') for n in blocks)

    result = ea.load_state_dict(stock.state_dict(), strict=False)
    assert result.unexpected_keys == []
    # (BatchNorm fills a missing num_batches_tracked itself and does not report it)
    plugin_keys = {f'{n}.{k}' for n, m in blocks.items() for k in m.state_dict()
                   if not k.endswith('num_batches_tracked')}
    assert set(result.missing_keys) == plugin_keys
    # and every stock tensor found its place
    stock_sd, ea_sd = stock.state_dict(), ea.state_dict()
    assert all(torch.equal(stock_sd[k], ea_sd[k]) for k in stock_sd)

    # zero_init + act_cfg=None: each block is an identity at initialisation, so the loaded
    # backbone computes what the stock ResNet-50 computes
    for m in blocks.values():
        assert torch.all(m.norm.weight == 0) and isinstance(m.act, torch.nn.Identity)
    stock.eval()
    ea.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(stock(x), ea(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('name,op', [('eanet_r50-d8_4xb4-80k_ade20k-512x512.py', 'Conv2d'),
                                     ('eanet_la-r50-d8_4xb4-80k_ade20k-512x512.py', 'LALayer')])
def test_eanet_backbone_dilations_follow_official(name, op):
    """Official model_torch.py at output stride 8: stage 3 dilation 2 with its first block at 1;
    stage 4 dilation 4 times grids (1, 2, 4), first block contracted to 2: (2, 8, 16)."""
    backbone_cfg = _cfg(name).model.backbone.copy()
    backbone_cfg.init_cfg = None
    backbone_cfg.norm_cfg = dict(type='BN', requires_grad=True)
    backbone = _build(backbone_cfg, 'mmseg')

    def dilations(layer):
        convs = [block.conv2 for block in layer]
        assert {type(c).__name__ for c in convs} == {op}
        return [c.dilation if isinstance(c.dilation, int) else c.dilation[0] for c in convs]

    assert dilations(backbone.layer3) == [1] + [2] * 5
    assert dilations(backbone.layer4) == [2, 8, 16]
    assert [b.conv2.stride if isinstance(b.conv2.stride, int) else b.conv2.stride[0]
            for b in backbone.layer2][:1] == [2]


def _readme_row(config_stem):
    """The cells of the README's parameter table row for ``config_stem``."""
    with open(osp.join(CFG_DIR, 'README.md')) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if cells and cells[0] == config_stem:
                return cells
    raise AssertionError(f'no parameter row for {config_stem} in configs/external_attention/'
                         'README.md')


def _int(cell):
    assert re.fullmatch(r'[\d,]+', cell), cell
    return int(cell.replace(',', ''))


def test_eahead_param_count_matches_readme():
    stem = 'eanet_r50-d8_4xb4-80k_ade20k-512x512'
    cfg = _cfg(stem + '.py')
    head_cfg = cfg.model.decode_head.copy()
    head_cfg.norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN has the same parameters
    head = _build(head_cfg, 'mmseg')
    assert type(head).__name__ == 'EAHead'
    # README columns: config | total | backbone | decode head | in EA blocks
    cells = _readme_row(stem)
    assert _n(head) == _int(cells[3])
    assert _n(head.ea) == _int(cells[4])
    # the official head: 3x3 2048->512 (+BN), EA block at 512 with S=64, 3x3 512->256 (+BN),
    # 1x1 classifier to 150 classes
    ea_block = 2 * 512 * 512 + 512 + 2 * 64 * 512 + 2 * 512
    expected = (9 * 2048 * 512 + 2 * 512) + ea_block + (9 * 512 * 256 + 2 * 256) + (
        256 * 150 + 150)
    assert _n(head) == expected


def test_eamlp_config_builds_image_classifier_and_runs():
    pytest.importorskip('mmpretrain')
    from mmpretrain.models import ImageClassifier
    from mmpretrain.structures import DataSample
    cfg = _cfg('eamlp-7_8xb64_in1k-384px.py')
    assert cfg.model.backbone.img_size == 384 and cfg.model.backbone.out_type == 'cls_token'
    torch.manual_seed(0)
    model = _build(cfg.model, 'mmpretrain')
    assert isinstance(model, ImageClassifier) and type(model.backbone).__name__ == 'EAMLP'
    model.init_weights()
    assert _n(model) == _int(_readme_row('eamlp-7_8xb64_in1k-384px')[1])

    # a small size: 64 px -> 4x4 tokens, the 24x24 position table resized
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        logits = model(x, mode='tensor')
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    model.train()
    samples = [DataSample().set_gt_label(3), DataSample().set_gt_label(7)]
    losses = model(x, samples, mode='loss')
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()
    assert model.backbone.layers[0].attn.mk.weight.grad is not None
