"""The figures that README.md, configs/*/README.md, the metafiles and docs/ quote agree with the
reproduction ledger (docs/paper_tables/*.yml) and with the configs they name.

The ledger holds every figure of a paper (or of an official repository, labelled with its
``source``) that a README or metafile quotes. Checked here, without building anything:

* metafile ``Results``: each value is the ledger's figure for a row that names the entry's
  config (a ``*_test-dev.py`` config: its row's config, test-dev tables);
* README/docs tables: in a row that links a config, every decimal figure of a cell labelled
  "paper" or "official" (in the cell or its column header) is a ledger figure of that config's
  rows, and the label matches the ledger's source (a figure from an official repository is not
  called the paper's);
* the top-level README's method table names, for each method, the detectors and segmentors of
  that method's paper rows (Cascade R-CNN is not Cascade Mask R-CNN);
* prose that tells users a checkpoint loads "without `prefix`" or to "add `prefix='backbone.'`"
  is true of every config that loads a checkpoint of that name.
"""
import fnmatch
import glob
import os.path as osp
import re

import pytest
import yaml

from config_cache import all_configs, load
from conftest import REPO

# metafile metric -> the ledger keys it may be stored under
METRICS = {'Top 1 Accuracy': ('top1', ), 'Top 5 Accuracy': ('top5', ), 'box AP': ('box_ap', 'ap'),
           'mask AP': ('mask_ap', ), 'mIoU': ('miou', ), 'aAcc': ('pix_acc', )}
DETECTORS = ('Cascade Mask R-CNN', 'Cascade R-CNN', 'Mask R-CNN', 'Faster R-CNN', 'RetinaNet',
             'HTC', 'DeepLabV3')
NUMBER = re.compile(r'(?<![\w.])\d+\.\d+(?![\w.])')


@pytest.fixture(scope='module')
def ledger():
    """{config: [(figures dict, source text, test_dev)]} over every ledger row naming it."""
    out = {}
    for path in glob.glob(osp.join(REPO, 'docs', 'paper_tables', '*.yml')):
        with open(path) as f:
            paper = yaml.safe_load(f)
        for t in paper['tables']:
            for r in t['rows']:
                source = ' '.join(str(x.get('source', '')) for x in (r, t, paper))
                entry = (r.get('paper') or {}, source, 'test-dev' in t['dataset'])
                for cfg in ([r['config']] if r.get('config') else []) + list(r.get('also') or []):
                    out.setdefault(cfg, []).append(entry)
    return out


def _numbers(figs):
    """The figures of a ledger row's ``paper:`` as floats (numbers inside strings too:
    '+1.6 top-1')."""
    out = set()
    for v in figs.values():
        if isinstance(v, (int, float)):
            out.add(float(v))
        elif isinstance(v, str):
            out.update(float(x) for x in NUMBER.findall(v))
    return out


def _figures(entries, test_dev=None):
    return {x for figs, _, td in entries if test_dev in (None, td) for x in _numbers(figs)}


def _metafile_models():
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml'))):
        with open(path) as f:
            for m in yaml.safe_load(f)['Models']:
                yield m


def test_metafile_results_are_ledger_figures(ledger):
    errors = []
    for m in _metafile_models():
        cfg = m['Config'].replace('_test-dev.py', '.py')
        for res in m.get('Results') or []:
            test_dev = 'test-dev' in res['Dataset']
            for metric, value in res['Metrics'].items():
                keys = METRICS.get(metric, (metric.lower().replace(' ', '_'), ))
                ok = any(float(figs.get(k, 'nan')) == float(value) for k in keys
                         for figs, _, td in ledger.get(cfg, []) if td == test_dev)
                if not ok:
                    errors.append(f"{m['Name']}: {metric} {value} ({res['Dataset']}) is not in "
                                  f'the ledger for {cfg}')
    assert not errors, '\n'.join(errors)


def _doc_files():
    return ([osp.join(REPO, 'README.md')] +
            sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md'))) +
            [osp.join(REPO, 'configs', 'README.md')] +
            sorted(glob.glob(osp.join(REPO, 'docs', '*.md'))))


def _tables(text):
    """(header cells, row cells) of every markdown table row."""
    header = None
    for line in text.splitlines():
        if not line.startswith('|'):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if header is None:
            header = cells
        elif not set(line) <= set('|-: '):
            yield header, cells


def test_readme_table_figures_are_ledger_figures(ledger):
    errors = []
    for path in _doc_files():
        with open(path) as f:
            text = f.read()
        base = osp.dirname(path)
        for header, cells in _tables(text):
            links = re.findall(r'\]\(([^)\s]+\.py)\)', ' '.join(cells))
            cfgs = {osp.relpath(osp.normpath(osp.join(base, link)), REPO) for link in links}
            if not cfgs:
                continue
            entries = [e for c in cfgs for e in ledger.get(c, [])]
            for i, cell in enumerate(cells):
                head = header[i] if i < len(header) else ''
                label = f'{head} {cell}'.lower()
                if 'paper' not in label and 'official' not in label:
                    continue
                if re.search(r'\bours\b|measured', head.lower()):
                    continue
                cell_text = re.sub(r'`[^`]*`|\([^)]*\.(tar|pth)[^)]*\)', '', cell)
                for num in NUMBER.findall(cell_text):
                    where = f'{osp.relpath(path, REPO)}: {sorted(cfgs)} "{cell}"'
                    if float(num) not in _figures(entries):
                        errors.append(f'{where}: {num} is not a ledger figure of these configs')
                        continue
                    sources = ' '.join(s for figs, s, _ in entries
                                       if float(num) in _numbers(figs))
                    official = 'official' in sources.lower()
                    says_paper = re.search(r'\(paper\)|paper\'s', cell.lower()) is not None
                    if official and says_paper:
                        errors.append(f'{where}: {num} is labelled the paper\'s, the ledger has '
                                      f'it from {sources.strip()}')
                    if 'official' in cell.lower() and not official:
                        errors.append(f'{where}: {num} is labelled official, the ledger has it '
                                      'from the paper')
    assert not errors, '\n'.join(errors)


def test_top_level_method_table_names_the_paper_detectors():
    methods = {'LESA': 'LESA', 'AA': 'AA', 'LA-layer': 'LA-layer', 'MRLA': 'MRLA',
               'EA': 'External Attention'}
    paper_rows = {}
    for m in _metafile_models():
        if m['Metadata']['Row'] == 'paper':
            arch = m['Metadata'].get('Architecture') or []
            first = arch[0] if arch else ''
            if first in DETECTORS:
                paper_rows.setdefault(m['In Collection'], set()).add(first)
    with open(osp.join(REPO, 'README.md')) as f:
        text = f.read()
    seen = set()
    for header, cells in _tables(text):
        if header[:2] != ['method', 'paper'] or cells[0] not in methods:
            continue
        seen.add(cells[0])
        col = cells[next(i for i, h in enumerate(header) if h.startswith('configs'))]
        named, rest = set(), col
        for d in DETECTORS:  # longest names first, so "Cascade Mask R-CNN" is not "Mask R-CNN"
            if d in rest:
                named.add(d)
                rest = rest.replace(d, '')
        assert named == paper_rows.get(methods[cells[0]], set()), (cells[0], col)
    assert seen == set(methods)


def test_prefix_advice_is_true_of_the_configs():
    loads = {}  # checkpoint path -> set of prefixes its configs use
    for rel in all_configs():
        cfg = load(rel)
        init = ((cfg.get('model') or {}).get('backbone') or {}).get('init_cfg') or {}
        if isinstance(init, dict) and str(init.get('checkpoint', '')).startswith('checkpoints/'):
            loads.setdefault(init['checkpoint'], set()).add(init.get('prefix'))
    errors = []
    for path in _doc_files():
        with open(path) as f:
            paragraphs = re.split(r'\n\s*\n', f.read())
        for par in paragraphs:
            flat = ' '.join(par.split())
            claims_none = ('without `prefix`' in flat
                           or "add `prefix='backbone.'`" in flat)
            if not claims_none:
                continue
            for pattern in re.findall(r'checkpoints/[\w*.{},-]+\.pth', flat):
                pats = [pattern]
                m = re.search(r'\{([^}]*)\}', pattern)
                if m:
                    pats = [pattern.replace(m.group(0), x) for x in m.group(1).split(',')]
                for ckpt, prefixes in loads.items():
                    if any(fnmatch.fnmatch(ckpt, p) for p in pats) and prefixes != {None}:
                        errors.append(f'{osp.relpath(path, REPO)}: says {pattern} loads without '
                                      f'a prefix, but its configs use {prefixes}')
    assert not errors, '\n'.join(errors)
