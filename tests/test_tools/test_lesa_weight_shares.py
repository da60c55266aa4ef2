"""tools/analysis_tools/lesa_weight_shares.py on a tiny random LESA model (the numbers mean
nothing on random weights: only the mechanics are checked)."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TINY = """
lesa = dict(type='LESA', num_heads=8, fusion='dynamic', pe_type={pe!r}, max_size=4)
model = dict(type='AttnResNet', depth=50, base_channels=16, strides=(1, 2, 2, 1),
             out_indices=(3, ), stage_ops=(None, None, lesa, lesa),
             op_blocks=('none', 'none', 'all_but_first', 'all'))
"""


def _tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'lesa_weight_shares.py')
    spec = importlib.util.spec_from_file_location('lesa_weight_shares', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('pe', ['classification', 'detection_qr'])
def test_shares_sum_to_one_and_png_written(tmp_path, capsys, pe):
    pytest.importorskip('mmseg')
    pytest.importorskip('matplotlib')
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(TINY.format(pe=pe))
    out_dir = tmp_path / 'out'
    result = _tool().main(['--config', str(cfg), '--random', '2', '--size', '64',
                           '--out-dir', str(out_dir)])
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
    out = capsys.readouterr().out
    assert 'these numbers mean nothing' in out and 'overall' in out


def test_model_without_dynamic_lesa_is_refused(tmp_path):
    pytest.importorskip('mmseg')
    cfg = tmp_path / 'sa.py'
    cfg.write_text(TINY.format(pe='classification').replace("'dynamic'", "'none'"))
    with pytest.raises(ValueError, match='no LESA module with fusion=dynamic'):
        _tool().main(['--config', str(cfg), '--random', '1', '--size', '64',
                      '--out-dir', str(tmp_path)])
