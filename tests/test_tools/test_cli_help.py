"""Every Python command line under tools/ answers `--help` at once: it parses its arguments
before importing torch or the OpenMMLab libraries (5-30 s of imports on a 2-core machine).

The scripts are found by glob (any tools/**/*.py with a ``__main__`` block), so a new tool is
checked without being listed here. Each runs in a fresh interpreter, as a user runs it.
"""
import glob
import os.path as osp
import subprocess
import sys
import time

import pytest

from conftest import REPO

# Interpreter start plus argparse is about 0.1 s; importing torch alone takes several seconds
# on the project's 2-core machines. 2 s leaves room for a machine busy with other jobs.
BOUND_S = 2.0
HEAVY = ('torch', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain', 'mmattn')

# runs the script as `python SCRIPT --help` would (same sys.argv and sys.path[0]), then lists
# the heavy modules that the run imported
RUNNER = f'''
import os, runpy, sys
script = sys.argv[1]
sys.argv = [script, '--help']
sys.path[0] = os.path.dirname(os.path.abspath(script))
code = 0
try:
    runpy.run_path(script, run_name='__main__')
except SystemExit as e:
    code = e.code
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print('HEAVY_IMPORTS=' + ','.join(heavy), file=sys.stderr)
sys.exit(code)
'''


def python_clis():
    found = []
    for path in sorted(glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True)):
        with open(path) as f:
            if "__name__ == '__main__'" in f.read():
                found.append(osp.relpath(path, REPO))
    return found


CLIS = python_clis()


def test_the_glob_finds_the_tools():
    for known in ('tools/train.py', 'tools/test.py', 'tools/misc/demo.py',
                  'tools/misc/make_toy_data.py'):
        assert known in CLIS


@pytest.mark.parametrize('script', CLIS)
def test_help_before_heavy_imports(script):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, '-c', RUNNER, script], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert 'usage:' in proc.stdout
    heavy = proc.stderr.rsplit('HEAVY_IMPORTS=', 1)[-1].strip()
    assert heavy == '', f'{script} --help imported {heavy}'
    assert seconds < BOUND_S, f'{script} --help took {seconds:.1f} s (bound {BOUND_S} s)'



def _load(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'mmattn_cli_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mmengine_dict_action(items):
    """What mmengine's DictAction (the tools' former --cfg-options action) makes of items."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options'] + items).cfg_options


@pytest.mark.parametrize('name', ['train', 'test'])
def test_cfg_options_parse_as_mmengine_and_name_a_bad_item(name, capsys):
    tool = _load(name)
    positional = ['c.py'] if name == 'train' else ['c.py', 'c.pth']
    items = ['model.backbone.depth=101', 'a=[1,2]', 'b=(1,(2,3))', 'c=True', "d='x y'", 'e=']
    # given in two --cfg-options groups, as DictAction merged them
    args = tool.parse_args(positional + ['--cfg-options'] + items[:3] +
                           ['--cfg-options'] + items[3:])
    assert args.cfg_options == _mmengine_dict_action(items)
    assert args.cfg_options['b'] == (1, (2, 3)) and args.cfg_options['c'] is True
    for bad in ('model.backbone.depth', '=101'):
        with pytest.raises(SystemExit) as info:
            tool.parse_args(positional + ['--cfg-options', 'a=1', bad])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"error: argument --cfg-options: {bad!r} is not KEY=VALUE (e.g. " in err, err


def test_test_out_must_be_a_pickle(capsys):
    tool = _load('test')
    assert tool.parse_args(['c.py', 'c.pth', '--out', 'p.pkl']).out == 'p.pkl'
    with pytest.raises(SystemExit) as info:
        tool.parse_args(['c.py', 'c.pth', '--out', 'preds.json'])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: argument --out: 'preds.json' does not end with .pkl or .pickle")
