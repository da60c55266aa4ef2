import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
os.environ.setdefault('OMP_NUM_THREADS', '2')  # make test sets 1 per xdist worker


def run_py(code_or_args, env=None, timeout=600, check=True, cwd=REPO):
    """Runs python (a -c snippet or an argv list) in a fresh process; returns CompletedProcess."""
    args = ['-c', code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env['PYTHONPATH'] = REPO + os.pathsep + full_env.get('PYTHONPATH', '')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\n'
                             f'STDERR:\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """Generated COCO / ADE20K / ImageNet sets shared by the tests of one session."""
    from mmattn.datasets import toy
    root = tmp_path_factory.mktemp('toy')
    toy.make_coco(str(root / "coco"), num_train=8, num_val=2, img_size=128, seed=0)
    toy.make_ade20k(str(root / 'ade20k'), num_train=4, num_val=2, img_size=64, seed=0)
    toy.make_imagenet(str(root / 'imagenet'), num_train_per_class=2, num_val_per_class=1,
                      img_size=32, seed=0)
    return root
