"""mmattn.analysis: build_model (nothing loaded), count_params, peak_memory."""
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

from conftest import run_py
from mmattn.analysis import build_model, count_params, drop_pretrained


def test_build_model_drops_pretrained_weights_only():
    cfg = Config(dict(model=dict(
        type='AttnResNet', depth=50, pretrained='nowhere.pth',
        init_cfg=dict(type='Pretrained', checkpoint='nowhere.pth'),
        stage_ops=(None, None, None, dict(type='LALayer')), op_blocks='all')))
    model = build_model(cfg)
    model.init_weights()  # would fail on 'nowhere.pth' had the Pretrained init_cfg stayed
    assert all(c['type'] != 'Pretrained' for c in model.init_cfg)
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
    """In a fresh process (as the benchmarks use it: in a process that freed memory before, a
    transient may reuse resident pages)."""
    code = textwrap.dedent("""
        import torch
        from mmattn.analysis.memory import peak_memory

        def work():
            t = torch.ones(64, 2**20 // 4)  # 64 MiB, freed before the end
            return float(t.sum())
        result, peak = peak_memory(work)
        print(result, peak)
        """)
    result, peak = run_py(code, timeout=120).stdout.split()
    assert float(result) == 64 * 2**20 // 4
    assert 60 * 2**20 < int(peak) < 200 * 2**20
