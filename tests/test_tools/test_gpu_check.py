"""tools/analysis_tools/gpu_check.py: the prepared GPU check, run with --quick on the CPU (tiny
sizes, seconds): the sections, their rows and the files it writes. The GPU figures themselves
come from a run on a lent GPU (DEVELOPERS.md, "GPU checks")."""
import json
import os.path as osp

from conftest import REPO, run_py

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'gpu_check.py')


def test_quick_run_writes_every_section(tmp_path):
    proc = run_py([TOOL, '--quick', '--out', str(tmp_path)], env={'OMP_NUM_THREADS': '1'},
                  timeout=600)
    res = json.loads((tmp_path / 'gpu_check.json').read_text())
    md = (tmp_path / 'gpu_check.md').read_text()
    assert 'errors' not in res, res.get('errors')
    assert res['env']['torch'] and res['env']['device'] == 'cpu'
    assert res['command'].endswith('gpu_check.py --quick')

    # exactness: every layout x dtype x kernel, within tolerance (flex forward-only on CPU)
    ex = res['exactness']
    assert {(r['layout'], r['dtype'], r['kernel']) for r in ex} == {
        (lay, dt, k) for lay in ('lesa', 'aa') for dt in ('float32', 'float64')
        for k in ('flex', 'chunked')}
    for r in ex:
        assert r['pass'], r
        assert r['grads'] == (r['kernel'] == 'chunked')
        if r['grads']:
            assert set(r['grad_rel_err']) >= {'q', 'k', 'v', 'rel_h', 'rel_w'}
    assert any('norm.weight' in r.get('grad_rel_err', {}) for r in ex if r['layout'] == 'lesa')

    # kernels: every case has the four kernels (flex skipped on CPU), times for the others
    for r in res['kernels']:
        assert set(r['kernels']) == {'flex fp32', 'chunked fp32', 'sdpa flash bf16',
                                     'sdpa efficient fp32'}
        assert 'skipped' in r['kernels']['flex fp32']
        for name in ('chunked fp32', 'sdpa flash bf16', 'sdpa efficient fp32'):
            assert r['kernels'][name]['median_ms'] > 0, (name, r)

    # backbones: ResNet-50 the baseline, LESA-R50 and AA-R50 on the default and chunked kernels
    bb = res['backbones']
    assert [(r['name'], r['kernel']) for r in bb] == [
        ('resnet50', 'auto'), ('lesa_r50', 'auto'), ('lesa_r50', 'chunked'), ('aa_r50', 'auto'),
        ('aa_r50', 'chunked')]
    for r in bb:
        assert r['median_ms'] > 0 and r['time_ratio'] > 0 and r['autocast'] == 'bf16', r
    assert bb[0]['time_ratio'] == 1.0

    for head in ('## Exactness', '## One attention core', '## Backbones', '| LESA-R50 | 64x64/1'):
        assert head in md
    assert 'written:' in proc.stdout
