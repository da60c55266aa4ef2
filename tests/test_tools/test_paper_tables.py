"""The reproduction ledger (docs/paper_tables.md): mmattn.analysis.ledger and its CLI,
tools/analysis_tools/paper_tables.py.

The end-to-end test runs the tool as the suite's guard, once: ``--check --diff`` (every
parameter and FLOP figure within 2% of the paper's or explained, and the committed doc equal to
a fresh regeneration; every config measured, about 1.5 min with one thread on an idle 2-core
machine). ``test_check_fails_on_an_unexplained_gap`` shows that the guard bites.
(The FLOP counter itself: tests/test_analysis/.)
"""
import os.path as osp
import re
import textwrap

import pytest

from conftest import REPO, run_py

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'paper_tables.py')


@pytest.fixture(scope='module')
def pt():
    from mmattn.analysis import ledger
    return ledger


def test_tolerance_rule(pt):
    n = pt.PaperNumber
    assert pt.within(25.78, n('25.8'))            # -0.1%
    assert pt.within(38.27, n('37.7'))            # +1.5%
    assert not pt.within(43.08, n('39.5'))        # +9.1%
    # 2% and nothing more: the paper's rounding buys no allowance
    assert not pt.within(0.066, n('0.07'))        # -5.7%
    assert pt.within(0.0687, n('0.07'))           # -1.9%
    assert not pt.within(0.181, n('0.16'))
    assert repr(n('42.10')) == '42.10'


def test_data_files_load_and_name_existing_configs(pt):
    papers = pt.load_papers()
    assert [p['paper'] for p in papers] == ['LESA', 'LA-layer', 'AA', 'MRLA', 'EANet']
    assert pt.data_errors(papers) == []
    # the tables the ledger promises
    ids = {(p['paper'], t['id']) for p in papers for t in p['tables']}
    for want in [('LESA', 'T2'), ('LESA', 'T3'), ('LESA', 'T4'), ('LESA', 'T6'),
                 ('LA-layer', 'T1'), ('LA-layer', 'T2'), ('LA-layer', 'T3'),
                 ('LA-layer', 'T4'), ('AA', 'T3'), ('AA', 'T5'), ('MRLA', 'intro'),
                 ('EANet', 'ADE20K'), ('EANet', 'ImageNet')]:
        assert want in ids
    # every row of the papers' tables (counted in shared/papers/; AA: the paper's text names
    # baseline, SE and AA rows per depth), each with a config or a `missing:` reason
    rows = {(p['paper'], t['id']): t['rows'] for p in papers for t in p['tables']}
    counts = {('LESA', 'T2'): 6, ('LESA', 'T3'): 14, ('LESA', 'T4'): 6, ('LESA', 'T6'): 5,
              ('LA-layer', 'T1'): 4, ('LA-layer', 'T2'): 19, ('LA-layer', 'T3'): 20,
              ('LA-layer', 'T4'): 8, ('AA', 'T3'): 9, ('AA', 'T5'): 6}
    assert {k: len(rows[k]) for k in counts} == counts
    assert all(r.get('config') or r.get('missing') for t in rows.values() for r in t)
    # paper figures keep the digits the paper printed
    la = next(p for p in papers if p['paper'] == 'LA-layer')
    t4 = next(t for t in la['tables'] if t['id'] == 'T4')
    assert pt.fmt_paper(t4['rows'][0]['paper']['miou']) == '42.10'


def test_data_errors_catch_a_missing_config(pt, tmp_path):
    (tmp_path / 'x.yml').write_text(textwrap.dedent('''\
        paper: X
        title: t
        source: s
        tables:
          - id: T1
            caption: c
            task: classification
            dataset: d
            input: [224, 224]
            rows:
              - {name: a, config: configs/nope/nope.py, paper: {params_m: 1.0}}
              - {name: b, config: null, paper: {params_m: 1.0}}
              - {name: c, config: null, missing: other method, baseline: zz}
        '''))
    errors = pt.data_errors(pt.load_papers(str(tmp_path)))
    assert len(errors) == 3
    assert 'does not exist' in errors[0] and 'missing' in errors[1] and 'baseline' in errors[2]


def test_explanations_are_filled_from_measurements(pt):
    row = dict(_keys=dict(params_no_pos_m=37.72, pos_params=550528))
    text = pt.explanation_text('without the {pos_params:,} table parameters: '
                               '{params_no_pos_m:.2f}M', row)
    assert text == 'without the 550,528 table parameters: 37.72M'
    assert '[unfilled' in pt.explanation_text('{nope}', row)


def _one_row_table(tmp_path, row, task='classification', extra=''):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'x.yml').write_text(textwrap.dedent('''\
        paper: X
        title: t
        source: s
        flops_convention: macs
        tables:
          - id: T1
            caption: c
            task: {task}
            dataset: d
            input: {input}
        {extra}    rows:
              - {row}
        ''').format(task=task, row=row, extra=extra,
                     input='[224, 224]' if task == 'classification' else '[800, 1333]'))
    return str(tmp_path)


def test_check_fails_on_an_unexplained_gap(pt, tmp_path, capsys):
    """A figure 10% off fails --check; the same figure with an explanation passes; a backbone
    FLOP figure against a whole-detector one fails unless explained."""
    cfg = 'configs/mrla/resnet50_8xb32-warmup_in1k.py'  # ResNet-50: 25.56M, 4.09 GMACs
    row = f'{{name: r, config: {cfg}, paper: {{params_m: 28.1, flops_g: 4.1}}}}'
    assert pt.run(check=True, data_dir=_one_row_table(tmp_path / 'a', row)) == 1
    out = capsys.readouterr().out
    assert "UNEXPLAINED: X T1 'r': params (M) ours 25.557 vs paper 28.1" in out
    assert 'FLOPs (G) paper 4.1 ours 4.089 (-0.3%): ok' in out
    row = row[:-1] + ', explanation: "the paper counts {params_m:.1f}M differently"}'
    assert pt.run(check=True, data_dir=_one_row_table(tmp_path / 'b', row)) == 0
    assert 'params (M) paper 28.1 ours 25.557 (-9.0%): explained' in capsys.readouterr().out

    det = ('{name: d, config: configs/la_layer/faster-rcnn_r50_fpn_ms-range-1x_coco.py, '
           'paper: {flops_g: 180}}')
    assert pt.run(check=True, data_dir=_one_row_table(
        tmp_path / 'c', det, 'detection', extra='    flops_scope: backbone\n')) == 1
    assert 'UNEXPLAINED' in capsys.readouterr().out


@pytest.mark.slow
def test_check_passes_and_doc_is_up_to_date():
    """Every parameter / FLOP figure within 2% of the paper's, or explained; and
    docs/paper_tables.md equals what the tool writes now (regenerate it if this fails)."""
    proc = run_py([TOOL, '--check', '--diff'], timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert 'UNEXPLAINED' not in proc.stdout
    assert 'docs/paper_tables.md is up to date' in proc.stdout
    # one progress line per config, "n/N" with a time estimate
    assert re.search(r'^\[1/(\d+)\] measured configs/\S+ \(\w+\) in [\d.]+s \(.*about .* left\)$',
                     proc.stdout, re.M)
