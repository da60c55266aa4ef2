"""tools/analysis_tools/benchmark_la_layer.py: a smoke run of ``--quick`` (output format, ratios)."""
import os.path as osp
import re

from conftest import REPO, run_py

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_la_layer.py')
RATIO = re.compile(r'^ratio (\S+) (\S+)/(\S+) = ([\d.]+)$')


def _ratios(stdout):
    out = {}
    for line in stdout.splitlines():
        m = RATIO.match(line)
        if m:
            out[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
    return out


def _check(proc, with_ext):
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('cpu: ') and '1 thread(s)' in lines[0], lines[0]
    ratios = _ratios(proc.stdout)
    impls = ['grid_sample'] + (['ext'] if with_ext else [])
    expected = {('layer-32-16x16/1', f'LALayer[{i}]', 'conv3x3') for i in impls} | \
        {('backbone-64x64/1', f'LA-R50[{i}]', 'ResNet-50') for i in impls}
    assert set(ratios) == expected, proc.stdout
    assert all(r > 0 for r in ratios.values())


def test_quick_run_prints_ratios():
    from mmattn.ops import ext_available
    proc = run_py([TOOL, '--quick'], timeout=600)
    _check(proc, ext_available('la_attn_fwd'))


def test_quick_run_without_the_extension():
    proc = run_py([TOOL, '--quick', '--no-backbone'], env={'MMATTN_DISABLE_EXT': '1'},
                  timeout=600)
    assert 'fused kernel is not available' in proc.stdout
    ratios = _ratios(proc.stdout)
    assert set(ratios) == {('layer-32-16x16/1', 'LALayer[grid_sample]', 'conv3x3')}
