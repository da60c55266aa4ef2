"""LESA's weight shares (mmattn.analysis.lesa_shares, tools/analysis_tools/lesa_weight_shares.py)
on a tiny random LESA model (the numbers mean nothing on random weights: only the mechanics
are checked)."""
import os.path as osp

import pytest

from conftest import REPO, run_py

TINY = """
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', pe_type={pe!r}, max_size=4)
model = dict(type='AttnResNet', depth=50, base_channels=16, strides=(1, 2, 2, 1),
             out_indices=(3, ), stage_ops=(None, None, lesa, lesa),
             op_blocks=('none', 'none', 'all_but_first', 'all'))
"""


TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'lesa_weight_shares.py')


@pytest.mark.parametrize('pe', ['classification', 'detection_qr'])
def test_shares_sum_to_one_and_png_written(tmp_path, pe):
    pytest.importorskip('mmseg')
    pytest.importorskip('matplotlib')
    from mmattn.analysis.lesa_shares import measure
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(TINY.format(pe=pe))
    out_dir = tmp_path / 'out'
    result = measure(str(cfg), random=2, size=[64], out_dir=str(out_dir))
    per_layer = result['per_layer']
    # layer3[1..5] and layer4[0..2]
    assert list(per_layer) == [f'layer3.{i}.conv2' for i in range(1, 6)] + \
        [f'layer4.{i}.conv2' for i in range(3)]
    for v in per_layer.values():
        assert v['unary'] + v['binary'] == pytest.approx(1, abs=1e-6)
        # omega in (0, 1): the unary share 1 / (1 + omega) is in (0.5, 1)
        assert 0.5 < v['unary'] < 1
    assert result['overall']['unary'] + result['overall']['binary'] == pytest.approx(1, abs=1e-6)
    assert per_layer['layer3.1.conv2']['shape'] == (64, 4, 4)
    assert osp.getsize(result['png']) > 1000
    with open(result['png'], 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    if pe == 'classification':  # the CLI prints the same (once: a process costs seconds)
        out = run_py([TOOL, '--config', str(cfg), '--random', '1', '--size', '64',
                      '--out-dir', str(out_dir)]).stdout
        assert 'these numbers mean nothing' in out and 'overall' in out
        assert out.count('layer3.') == 5 and 'heat map: ' in out


def test_model_without_dynamic_lesa_is_refused(tmp_path):
    pytest.importorskip('mmseg')
    cfg = tmp_path / 'sa.py'
    cfg.write_text(TINY.format(pe='classification').replace("'dynamic'", "'none'"))
    from mmattn.analysis.lesa_shares import measure
    with pytest.raises(ValueError, match='no LESA module with fusion=dynamic'):
        measure(str(cfg), random=1, size=[64], out_dir=str(tmp_path))
