"""tools/analysis_tools/benchmark.py: a smoke run on a tiny size (output format, ratios)."""
import json
import os.path as osp
import re

import pytest

from conftest import REPO, run_py

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')


def _rows(stdout, size):
    """The absolute table's rows of one size: label -> [time, time ratio, peak, peak ratio]."""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith('backbone '))
    assert 'time / R50' in lines[head] and 'peak / R50' in lines[head]
    rows = {}
    for line in lines[head + 1:]:
        if not line.strip():
            break
        m = re.match(rf'(.+?)\s+{re.escape(size)}\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s*$',
                     line)
        assert m, line
        rows[m.group(1).strip()] = [float(x) for x in m.groups()[1:]]
    return rows


def test_tiny_run_prints_ratios_to_resnet50(tmp_path):
    out_json, out_md = tmp_path / 'b.json', tmp_path / 'b.md'
    # resnet50 is added by the tool (the ratios need it); an attention backbone, a baseline,
    # the explicit path of one operator
    proc = run_py([TOOL, '--sizes', '64x64/2', '--models', 'la_r50', 'wrn50', 'aa_r50@explicit',
                   '--repeats', '1', '--threads', '1', '--json', str(out_json),
                   '--markdown', str(out_md)], timeout=900)
    rows = _rows(proc.stdout, '64x64/2')
    assert set(rows) == {'ResNet-50', 'LA-R50', 'WRN-50-2', 'AA-R50 [explicit]'}
    assert rows['ResNet-50'][1] == 1.0 and rows['ResNet-50'][3] == 1.0
    for t, t_ratio, peak, peak_ratio in rows.values():
        assert t > 0 and t_ratio > 0 and peak > 0 and peak_ratio > 0
    # a wide ResNet is bigger than ResNet-50: more memory (its gradients alone are 2.7x)
    assert rows['WRN-50-2'][3] > 1.2
    # the header line: machine, torch version, load average; the ratio table
    assert re.search(r'nproc \d+, torch \S+', proc.stdout) and 'load average' in proc.stdout
    ratios = proc.stdout.split('Ratios to ResNet-50:')[1]
    assert re.search(r'ResNet-50\s+1\.00\s+1\.00', ratios)

    data = json.loads(out_json.read_text())
    assert data['complete'] and data['sizes']['64x64/2']['repeats'] == 1
    res = data['results']['64x64/2']
    assert list(res) == ['resnet50', 'la_r50', 'wrn50', 'aa_r50@explicit']
    assert res['resnet50']['time_ratio'] == 1.0 and res['resnet50']['peak_ratio'] == 1.0
    assert res['la_r50']['time_ratio'] > 0 and res['aa_r50@explicit']['peak_ratio'] > 0
    assert data['machine']['torch'] and data['command'].startswith('python tools/')
    md = out_md.read_text()
    assert md.startswith('`python tools/analysis_tools/benchmark.py')
    assert '| LA-R50 | 64x64/2 |' in md and '| ResNet-50 | 1.00 | 1.00 |' in md


@pytest.mark.slow
def test_detection_path_cpu_clock_every_new_backbone(tmp_path):
    """Above 224 the detection backbones run (static LESA from the LESA detection config,
    EAMLP-7 as built); --clock cpu; --repeats-large 0 reports the warm-up step."""
    out_json = tmp_path / 'b.json'
    run_py([TOOL, '--sizes', '256x256/1', '--models', 'static_lesa_r50', 'eamlp7',
            '--repeats', '3', '--repeats-large', '0', '--clock', 'cpu', '--threads', '1',
            '--json', str(out_json)], timeout=900)
    data = json.loads(out_json.read_text())
    res = data['results']['256x256/1']
    assert set(res) == {'resnet50', 'static_lesa_r50', 'eamlp7'}
    for r in res.values():
        assert r['runs'] == 0 and r['time'] > 0 and r['peak'] > 0, r
    assert data['sizes']['256x256/1']['repeats'] == 0


def test_budget_skips_with_a_message():
    proc = run_py([TOOL, '--sizes', '64x64/2', '--models', 'resnet50', '--repeats', '1',
                   '--budget', '0.001', '--no-memory'], timeout=300)
    assert re.search(r'ResNet-50 .*skipped: warm-up step over the 0.001 s budget', proc.stdout)


def test_options_and_case_list():
    """Bad sizes and names answer with one line; --list; the default cases (from the configs
    and the operator registry); the explicit-path memory estimate."""
    proc = run_py([TOOL, '--sizes', '64x'], check=False, timeout=60)
    assert proc.returncode == 2 and "size '64x': a preset (224, 1024, 1333x800)" in proc.stderr
    proc = run_py([TOOL, '--models', 'nope', '--list'], check=False, timeout=300)
    assert proc.returncode == 1 and "unknown backbone 'nope'" in proc.stderr
    from mmattn.analysis import bench_cases
    from mmattn.models.layers.base import list_operators
    listed = run_py([TOOL, '--list'], timeout=300).stdout.split()
    cases = bench_cases.all_cases()
    assert [w for w in listed if w in cases] == cases
    # the three baselines, every attention backbone, the explicit paths, every operator
    for name in ('resnet50', 'resnext50', 'wrn50', 'lesa_r50', 'sa_r50', 'static_lesa_r50',
                 'lesa_wrn50', 'sa_wrn50', 'static_lesa_wrn50', 'aa_r50', 'la_r50', 'la_x50',
                 'mrla_light_r50', 'mrla_base_r50', 'ea_r50', 'eamlp7', 'lesa_r50@explicit',
                 'aa_r50@explicit'):
        assert name in cases
    assert [c for c in cases if c.startswith('op:')] == [f'op:{n}'
                                                         for n in sorted(list_operators())]
    # static LESA at a detection size: the LESA detection backbone with the static fusion
    cfg = bench_cases.backbone_cfg('static_lesa_r50', detection=True)
    assert {op['fusion'] for op in cfg.model.backbone.stage_ops if op} == {'static'}
    # the explicit path of LESA at a detection size would not fit: skipped by the estimate
    assert bench_cases.explicit_estimate_gib('lesa_r50@explicit', (800, 1344, 1)) > 8
    assert bench_cases.explicit_estimate_gib('lesa_r50', (800, 1344, 1)) == 0
