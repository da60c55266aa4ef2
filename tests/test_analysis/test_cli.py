"""mmattn.analysis.cli (progress lines, quiet logs); every analysis tool has --verbose."""
import glob
import io
import logging
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO
from mmattn.analysis.cli import Progress, quiet

TOOLS = sorted(glob.glob(osp.join(REPO, 'tools', 'analysis_tools', '*.py')))


def test_progress_counts_and_estimates():
    now = [100.0]
    out = io.StringIO()
    p = Progress(4, 'measured', stream=out, clock=lambda: now[0])
    now[0] += 30
    p.step('a')
    now[0] += 30
    p.step('b')
    now[0] += 90
    p.step('c')
    p.step('d')
    lines = out.getvalue().splitlines()
    assert lines[0] == '[1/4] measured a (30s, about 1m30s left)'
    assert lines[1] == '[2/4] measured b (1m00s, about 1m00s left)'
    assert lines[2] == '[3/4] measured c (2m30s, about 50s left)'
    assert lines[3] == '[4/4] measured d (2m30s)'  # no estimate when done


def test_progress_weights():
    now = [0.0]
    out = io.StringIO()
    p = Progress(3, stream=out, weights=[1, 1, 8], clock=lambda: now[0])
    now[0] = 10
    p.step('x')
    assert out.getvalue().strip() == '[1/3] x (10s, about 1m30s left)'


def test_quiet_sets_library_loggers():
    quiet(False)
    assert logging.getLogger('mmengine').level == logging.WARNING
    from mmengine.logging import MMLogger
    assert MMLogger.get_instance('mmengine').level == logging.WARNING
    quiet(True)
    assert logging.getLogger('mmdet').level == logging.INFO
    quiet(False)


@pytest.mark.parametrize('tool', TOOLS, ids=osp.basename)
def test_every_analysis_tool_is_quiet_unless_verbose(tool):
    """Each analysis tool has --verbose (its library logs are at WARNING without it); that
    --help answers before the heavy imports is tests/test_tools/test_cli_help.py's."""
    proc = subprocess.run([sys.executable, tool, '--help'], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert '--verbose' in proc.stdout
    with open(tool) as f:
        assert 'quiet(args.verbose)' in f.read()
