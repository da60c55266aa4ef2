"""mmattn.analysis: build_model (nothing loaded), count_params, peak_memory."""
import sys

import pytest
import torch
from mmengine.config import Config

from mmattn.analysis import build_model, count_params, drop_pretrained, peak_memory


def test_build_model_drops_pretrained_weights_only():
    cfg = Config(dict(model=dict(
        type='AttnResNet', depth=50, pretrained='nowhere.pth',
        init_cfg=dict(type='Pretrained', checkpoint='nowhere.pth'),
        stage_ops=(None, None, None, dict(type='LALayer')), op_blocks='all')))
    model = build_model(cfg)  # a Pretrained init_cfg would fail on init, not on build
    assert model.init_cfg is None
    assert 'init_cfg' in cfg.model  # the caller's config is not changed
    node = drop_pretrained(dict(a=[dict(init_cfg=dict(type='Pretrained')),
                                   dict(init_cfg=dict(type='Kaiming'))]))
    assert node == dict(a=[{}, dict(init_cfg=dict(type='Kaiming'))])
    with pytest.raises(FileNotFoundError, match='nope.py'):
        build_model('configs/nope.py')


def test_count_params_tables_and_groups():
    m = torch.nn.Module()
    m.conv = torch.nn.Conv2d(2, 3, 1)
    m.relative = torch.nn.Parameter(torch.zeros(5, 4))
    m.sub = torch.nn.Module()
    m.sub.rel_height = torch.nn.Parameter(torch.zeros(7))
    out = count_params(m, dict(conv=r'^conv\.'))
    assert out == dict(params=6 + 3 + 20 + 7, pos_params=27, groups=dict(conv=9))


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
def test_peak_memory_sees_a_transient():
    def work():
        t = torch.ones(64, 2**20 // 4)  # 64 MiB, freed before the end
        return float(t.sum())
    result, peak = peak_memory(work)
    assert result == 64 * 2**20 // 4
    assert 60 * 2**20 < peak < 400 * 2**20
