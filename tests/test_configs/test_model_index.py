"""model-index.yml, the metafiles and the generated matrix of configs/README.md.

`mim search mmattn` reads ``mmattn/.mim/model-index.yml`` beside the package that
``pkg_resources`` finds: for `make install`'s editable install (an egg-link,
tools/misc/install_env.sh) that is this checkout.
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, run_py

TOOL = osp.join(REPO, 'tools', 'misc', 'config_matrix.py')


def _configs():
    return sorted(osp.relpath(p, REPO)
                  for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                  if '_base_' not in p.split(osp.sep))


@pytest.fixture(scope='module')
def models():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert sorted(index['Import']) == sorted(
        osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')))
    out = []
    for rel in index['Import']:
        with open(osp.join(REPO, rel)) as f:
            out += yaml.safe_load(f)['Models']
    return out


def test_every_config_has_one_metafile_entry_with_a_unique_name(models):
    assert sorted(m['Config'] for m in models) == _configs()
    names = [m['Name'] for m in models]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for m in models:
        md = m['Metadata']
        assert isinstance(md['Parameters'], int) and md['Parameters'] > 1e6, m['Name']
        assert md['Row'] in ('paper', 'extension'), m['Name']


def test_paper_rows_are_the_ledger_configs(models):
    ledger = set()
    for path in glob.glob(osp.join(REPO, 'docs', 'paper_tables', '*.yml')):
        with open(path) as f:
            for t in yaml.safe_load(f)['tables']:
                for r in t['rows']:
                    ledger.update(([r['config']] if r.get('config') else []) +
                                  list(r.get('also') or []))
    for m in models:
        cfg = m['Config'].replace('_test-dev.py', '.py')
        assert (m['Metadata']['Row'] == 'paper') == (cfg in ledger), m['Name']


def test_matrix_is_complete_and_current():
    sys.path.insert(0, osp.dirname(TOOL))
    try:
        import config_matrix as cm
    finally:
        sys.path.pop(0)
    cells = cm.cells(cm.load_models())
    assert set(cells) == {(b, c) for b in cm.BACKBONES for c in cm.COLUMNS}
    proc = run_py([TOOL, '--check'], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_matrix_check_fails_when_stale(tmp_path):
    sys.path.insert(0, osp.dirname(TOOL))
    try:
        import config_matrix as cm
    finally:
        sys.path.pop(0)
    with open(cm.README) as f:
        text = f.read()
    table = cm.render(cm.load_models())
    stale = cm.updated_readme(text, table.replace('extension', 'paper row', 1))
    assert stale != text and cm.updated_readme(stale, table) == text


@pytest.mark.slow
def test_mim_search_lists_every_config(tmp_path):
    """As a user runs it: the venv's mim, the installed mmattn, from another directory."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([mim, 'search', 'mmattn', '--display-width', '300'],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    listed = set(re.findall(r'configs/\S+?\.py', proc.stdout))
    assert listed == set(_configs()), sorted(set(_configs()) - listed)[:10]


@pytest.mark.slow
def test_configs_readme_parameter_command_prints_the_metafile_count(models):
    """The command of configs/README.md, "Parameters in the metafiles", as written."""
    with open(osp.join(REPO, 'configs', 'README.md')) as f:
        text = f.read()
    section = text.split('## Parameters in the metafiles', 1)[1]
    block = section.split('```bash\n', 1)[1].split('```', 1)[0]
    code = re.search(r'-c "\n(.*)"\n', block, re.S).group(1)
    config = re.search(r"Config\.fromfile\('([^']+)'\)", code).group(1)
    out = run_py(code).stdout.split()
    want = next(m['Metadata']['Parameters'] for m in models if m['Config'] == config)
    assert int(out[-1]) == want
