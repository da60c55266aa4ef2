"""The ledger's data files: the papers' figures, the config of every row, the explanations.

``docs/paper_tables/*.yml``, one file per paper, hold the papers' figures (never ours), the
config of every row (``config: null`` + ``missing:`` for rows nothing implements), the FLOP
convention of the paper and an ``explanation:`` for any figure of ours more than 2% from the
paper's (a format string filled from the measurements: :func:`.compare.format_keys`).
"""
import glob
import json
import os.path as osp

from ..cli import repo_root

REPO = repo_root()
DATA_DIR = osp.join(REPO, 'docs', 'paper_tables')
DOC = osp.join(REPO, 'docs', 'paper_tables.md')
TOLERANCE = 0.02
# (column label, key of the paper's figure in a data file = key of ours in the format keys)
FIGURES = (('params (M)', 'params_m'), ('FLOPs (G)', 'flops_g'),
           ('extra params (M)', 'extra_params_m'), ('extra FLOPs (G)', 'extra_flops_g'))
CONVENTIONS = {
    'macs': 'multiply-adds',
    '2macs': '2 x multiply-adds',
    'thop': 'thop (multiply-adds + BatchNorm and pooling per element)',
    'none': 'no FLOPs reported',
}
NOT_TRAINED = {
    'classification': 'not trained here: no ImageNet, no GPU',
    'detection': 'not trained here: no COCO, no GPU',
    'segmentation': 'not trained here: no ADE20K, no GPU',
}
# configs whose FLOPs cross-check against mmengine's FlopAnalyzer goes into the doc


def load_papers(data_dir=DATA_DIR):
    """The data files, in their ``order``; each table's rows get the table's defaults."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor('tag:yaml.org,2002:float',
                           lambda loader, node: PaperNumber(loader.construct_scalar(node)))
    papers = []
    for path in sorted(glob.glob(osp.join(data_dir, '*.yml')) +
                       glob.glob(osp.join(data_dir, '*.json'))):
        with open(path) as f:
            paper = json.load(f) if path.endswith('.json') else yaml.load(f, Loader)
        paper['file'] = osp.relpath(path, REPO)
        for table in paper['tables']:
            for row in table['rows']:
                row.setdefault('paper', {})
                for key in ('task', 'input', 'log_metric', 'flops_scope'):
                    row.setdefault(key, table.get(key))
        papers.append(paper)
    papers.sort(key=lambda p: (p.get('order', 99), p['paper']))
    return papers


def row_configs(row):
    return ([row['config']] if row.get('config') else []) + list(row.get('also') or [])


def data_errors(papers):
    """Problems in the data files themselves (a config that is gone, a baseline not found)."""
    errors = []
    for paper in papers:
        for table in paper['tables']:
            names = {r['name'] for r in table['rows']}
            for row in table['rows']:
                where = f"{paper['file']} {table['id']} '{row['name']}'"
                for cfg in row_configs(row):
                    if not osp.isfile(osp.join(REPO, cfg)):
                        errors.append(f'{where}: config {cfg} does not exist')
                if not row.get('config') and not row.get('missing'):
                    errors.append(f'{where}: no config and no `missing:` reason')
                if row.get('baseline') and row['baseline'] not in names:
                    errors.append(f"{where}: baseline '{row['baseline']}' is not a row of the "
                                  'table')
    return errors




class PaperNumber(float):
    """A float that remembers how the data file (the paper) printed it: ``42.10`` stays
    ``42.10``."""

    def __new__(cls, text):
        obj = super().__new__(cls, text)
        obj.text = text
        return obj

    def __repr__(self):
        return self.text


def within(ours, paper):
    """Within 2% of the paper's figure (no allowance for the paper's rounding: a figure the
    paper prints as "0.07" and we measure as 0.066 is 5% off and needs an explanation)."""
    if paper == 0:
        return ours == 0
    return abs(ours - paper) <= TOLERANCE * abs(paper)


def gap(ours, paper):
    return f'{100 * (ours - paper) / paper:+.1f}%'




def part_of(row):
    """What is measured: the whole classifier; the detector's backbone (FPN and heads are the
    same in every row of a detection table); the whole segmentor (EANet's operator sits in the
    decode head)."""
    return 'backbone' if row['task'] == 'detection' else 'model'

