"""mmattn's checks where the model is built outside its tools: `mim test` with a checkpoint of
another model fails with the message of tools/test.py, `mim train` with a missing data root
with the one line of tools/train.py."""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import REPO

pytestmark = pytest.mark.slow
CONFIG = osp.join(REPO, 'configs/aa/aa-r50_8xb32-100e_in1k.py')
MIM = osp.join(osp.dirname(sys.executable), 'mim')


def _toy_config(path, data_root, **backbone):
    from mmengine.config import Config

    from mmattn.testing import make_toy_cfg
    cfg = make_toy_cfg(Config.fromfile(CONFIG), str(data_root), max_iters=1, val=False)
    cfg.model.backbone.update(base_channels=16, stem_channels=16, **backbone)
    cfg.model.head.in_channels = 512
    cfg.dump(str(path))
    return str(path)


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _error_line(proc):
    """The exception line of the failed run (``module.Class: message``); mim's own
    CalledProcessError about its child process comes after it and is not the answer."""
    lines = [ln for ln in proc.stderr.splitlines() if re.match(r'^[\w.]+(Error|Exception): ', ln)
             and not ln.startswith('subprocess.CalledProcessError')]
    assert proc.returncode != 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return lines[-1]


@pytest.mark.skipif(not osp.exists(MIM), reason='mim is not installed')
def test_mim_test_with_a_wrong_checkpoint_fails_like_tools_test(toy_root, tmp_path):
    import mmattn  # noqa: F401
    from mmattn.apis import build_model_from_cfg
    from mmengine.config import Config
    cfg = _toy_config(tmp_path / 'aa.py', toy_root / 'imagenet')
    # a checkpoint of another model: the same classifier with plain convs (no AA operators)
    other = Config.fromfile(_toy_config(tmp_path / 'plain.py', toy_root / 'imagenet',
                                        stage_ops=(None, ) * 4))
    ckpt = tmp_path / 'plain.pth'
    torch.save({'state_dict': build_model_from_cfg(other).state_dict(), 'meta': {}}, ckpt)
    tools = _run([sys.executable, osp.join(REPO, 'tools/test.py'), cfg, str(ckpt),
                  '--work-dir', str(tmp_path / 'w1')], tmp_path)
    mim = _run([MIM, 'test', 'mmpretrain', cfg, '--checkpoint', str(ckpt),
                '--work-dir', str(tmp_path / 'w2')], tmp_path)
    line = _error_line(tools)
    assert line.startswith('mmattn.apis.runner.CheckpointMismatchError: checkpoint ')
    assert 'does not fit the model of this config' in line
    assert _error_line(mim) == line


@pytest.mark.skipif(not osp.exists(MIM), reason='mim is not installed')
def test_mim_train_with_missing_data_fails_like_tools_train(toy_root, tmp_path):
    data = tmp_path / 'imagenet'
    shutil.copytree(toy_root / 'imagenet', data)
    cfg = _toy_config(tmp_path / 'aa.py', data)
    shutil.rmtree(data)
    tools = _run([sys.executable, osp.join(REPO, 'tools/train.py'), cfg,
                  '--work-dir', str(tmp_path / 'w1')], tmp_path)
    mim = _run([MIM, 'train', 'mmpretrain', cfg, '--work-dir', str(tmp_path / 'w2')], tmp_path)
    line = _error_line(tools)
    assert line.startswith('FileNotFoundError: train_dataloader.dataset.data_root=')
    assert _error_line(mim) == line
