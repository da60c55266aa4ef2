"""tools/analysis_tools/benchmark.py and benchmark_attention.py: smoke runs at toy size (output
format, the CPU line, ratios to the baseline); no timing thresholds."""
import json
import os.path as osp
import re

import pytest

from conftest import REPO, run_py

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
KERNEL_TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_attention.py')
CPU_LINE = re.compile(r'^CPU: \S.*, \d+ cores.*, load average', re.M)


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
    # the CPU line (first, and again above the tables); the header line: machine, torch
    # version, the clock (CPU time by default on CPU), load average; the ratio table
    assert proc.stdout.startswith('CPU: ') and len(CPU_LINE.findall(proc.stdout)) == 2
    assert re.search(r'nproc \d+, torch \S+', proc.stdout) and 'load average' in proc.stdout
    assert 'torch threads: 1' in proc.stdout
    assert 'time: CPU time per step (time.process_time), median of interleaved' in proc.stdout
    ratios = proc.stdout.split('Ratios to ResNet-50:')[1]
    assert re.search(r'ResNet-50\s+1\.00\s+1\.00', ratios)

    data = json.loads(out_json.read_text())
    assert data['complete'] and data['sizes']['64x64/2']['repeats'] == 1
    res = data['results']['64x64/2']
    assert list(res) == ['resnet50', 'la_r50', 'wrn50', 'aa_r50@explicit']
    assert res['resnet50']['time_ratio'] == 1.0 and res['resnet50']['peak_ratio'] == 1.0
    assert res['la_r50']['time_ratio'] > 0 and res['aa_r50@explicit']['peak_ratio'] > 0
    assert data['machine']['torch'] and data['command'].startswith('python tools/')
    assert data['machine']['cpu'] and data['machine']['machine'].startswith('CPU: ')
    assert res['la_r50']['wall'] > 0  # the wall-clock median next to the CPU time
    md = out_md.read_text()
    assert md.startswith('`python tools/analysis_tools/benchmark.py')
    assert CPU_LINE.search(md)
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
    from mmattn.analysis.bench_cases import check_case
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
    # the group attention (every config backbone with attention) and the kernel cases
    listed = run_py([TOOL, '--list', '--models', 'attention', 'lesa_r50', '--kernels', 'ext',
                     'chunked'], timeout=300).stdout.split()
    names = [w for w in listed if check_case(w) is None]
    assert names[0] == 'resnet50' and 'wrn50' not in names and 'resnext50' not in names
    assert names.count('lesa_r50') == 1
    for name in ('lesa_r50', 'sa_wrn50', 'static_lesa_r50', 'aa_r50', 'la_r50', 'mrla_base_r50',
                 'ea_r50', 'eamlp7', 'lesa_r50@ext', 'lesa_r50@chunked', 'aa_r50@ext'):
        assert name in names
    assert 'la_r50@ext' not in names and 'lesa_r50@sdpa' not in names
    assert check_case('aa_r50@sdpa') is None and 'kernel (ext' in check_case('aa_r50@flex')
    # static LESA at a detection size: the LESA detection backbone with the static fusion
    cfg = bench_cases.backbone_cfg('static_lesa_r50', detection=True)
    assert {op['fusion'] for op in cfg.model.backbone.stage_ops if op} == {'static'}
    # the explicit path of LESA at a detection size would not fit: skipped by the estimate
    assert bench_cases.explicit_estimate_gib('lesa_r50@explicit', (800, 1344, 1)) > 8
    assert bench_cases.explicit_estimate_gib('lesa_r50', (800, 1344, 1)) == 0


def _kernel_rows(text, **where):
    """Markdown rows of the kernel tool's first table in ``text`` whose columns hold the
    values of ``where``: (tokens, q/k, v) -> {column: cell}."""
    lines = text.splitlines()
    head = next(line for line in lines if line.startswith('| tokens |'))
    cols = [c.strip() for c in head.strip('|').split('|')]
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip('|').split('|')]
        row = dict(zip(cols, cells))
        if line.startswith('| ') and len(cells) == len(cols) and re.match(r'\d+x\d+', cells[0]) \
                and all(row[k] == str(v) for k, v in where.items()):
            rows[tuple(cells[:3])] = row
    return rows


def test_kernel_table_quick(tmp_path):
    """benchmark_attention.py --quick --memory: the toy rows, every kernel against the floor
    (time and memory ratios), the CPU line, torch, ext_status, the rounds."""
    out_json = tmp_path / 'k.json'
    proc = run_py([KERNEL_TOOL, '--quick', '--memory', '--json', str(out_json)], timeout=600)
    out = proc.stdout
    assert CPU_LINE.match(out)
    assert re.search(r'^torch \S+; (compiled kernels|mmattn\._ext)', out, re.M)
    assert '2 interleaved round(s)' in out and 'threads 1;' in out
    time_part, mem_part = out.split('Peak memory')
    rows = _kernel_rows(time_part, threads=1)
    assert set(rows) == {('6x7', '16', '32'), ('5x6', '20', '2')}
    for row in rows.values():
        assert row['floor'].startswith('1.00x (') and row['rounds'] == '2'
        for kernel in ('explicit', 'chunked', 'ext', 'sdpa'):
            assert re.match(r'\d+\.\d\dx \([\d.]+ m?s\)$', row[kernel]) \
                or (kernel == 'ext' and row[kernel] == 'skipped'), (kernel, row)
    mem = _kernel_rows(mem_part)
    assert set(mem) == set(rows)
    assert mem[('6x7', '16', '32')]['floor'].startswith('1.00x (')
    assert re.match(r'\d+\.\d\dx \(\d+ MiB\)$', mem[('6x7', '16', '32')]['chunked'])
    data = json.loads(out_json.read_text())
    assert data['rounds'] == 2 and data['threads'] == [1]
    assert data['kernels'] == ['floor', 'explicit', 'chunked', 'ext', 'sdpa']
    first = data['times'][0]['results']
    assert first['floor']['ratio'] == 1.0 and first['chunked']['rounds'] == 2
    assert first['chunked']['cpu'] > 0 and first['chunked']['wall'] > 0
    assert {m['kernel'] for m in data['memory']} == set(data['kernels'])


def test_kernel_table_rows_and_options():
    """The issue's rows (the kernel alone), then LESA's logit-norm row; explicit skipped where
    its (HW)^2 tensors would not fit; bad rows."""
    from mmattn.analysis import bench_kernels as bk
    assert [(r.size, r.dqk, r.dv, r.norm) for r in bk.ROWS] == [
        ((50, 84), 16, 32, None), ((64, 64), 16, 32, None), ((50, 84), 32, 64, None),
        ((100, 167), 16, 32, None), ((100, 167), 20, 2, None), ((50, 84), 16, 32, 'bn')]
    skipped = bk.plan(bk.ROWS, bk.KERNELS, max_gib=8, device='cpu')
    assert [i for i in range(5) if skipped[i, 'explicit']] == [3, 4]
    assert not any(skipped[i, k] for i in range(5) for k in ('floor', 'chunked', 'sdpa'))
    proc = run_py([KERNEL_TOOL, '--quick', '--rows', '7'], check=False, timeout=300)
    assert proc.returncode == 1 and '--rows 7: there are 2 rows' in proc.stderr
