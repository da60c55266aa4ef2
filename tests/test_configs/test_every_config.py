"""Every config in configs/ builds, trains one step and runs one test step on generated data,
and its model has the parameter count its metafile states.

Only the data root, image size and schedule change (mmattn/testing/toy_cfg.py); the model, the
pipelines and the evaluators are the ones a researcher launches on 8 GPUs. The `*_test-dev.py`
configs are their row's config with another test set: tests/test_configs/test_config_content.py
runs one on test-dev-shaped data and checks that the others equal their row's.
"""
import glob
import math
import os.path as osp
import uuid

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep) and not osp.basename(p).startswith('_')
    and not p.endswith('_test-dev.py'))
DATA = {'mmdet': 'coco', 'mmseg': 'ade20k', 'mmpretrain': 'imagenet'}


def _id(path):
    return osp.relpath(path, osp.join(REPO, 'configs'))


def _metafile_parameters():
    import yaml
    out = {}
    for path in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')):
        with open(path) as f:
            for m in yaml.safe_load(f)['Models']:
                out[osp.join(REPO, m['Config'])] = m['Metadata']['Parameters']
    return out


PARAMETERS = _metafile_parameters()


def run_one_step(config_path, toy_root, tmp_path):
    from mmengine.config import Config

    import mmattn  # noqa: F401
    from mmattn.apis import build_runner_from_cfg, library_of
    from mmattn.testing import make_toy_cfg
    cfg = Config.fromfile(config_path)
    # no yapf pass over the whole config each time the Runner logs or dumps it (~7 s a config;
    # mmengine 0.10.7's fromfile drops its own format_python_code argument for .py files)
    object.__setattr__(cfg, '_format_python_code', False)
    library = library_of(cfg)
    cfg = make_toy_cfg(cfg, str(toy_root / DATA[library]), max_iters=1, batch_size=2,
                       val=False, score_thr=0.0, clip_grad=35)
    cfg.work_dir = str(tmp_path)
    cfg.visualizer.name = f'vis_{uuid.uuid4().hex}'  # runners in one process share by name
    # no checkpoint at all: mmengine saves the last one by default (hundreds of MB per config)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    runner = build_runner_from_cfg(cfg)
    n = sum(p.numel() for p in runner.model.parameters())
    assert n == PARAMETERS.get(config_path), \
        f'{_id(config_path)}: {n} parameters, metafile says {PARAMETERS.get(config_path)}'
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(losses), f'{_id(config_path)}: training loss {losses}'
    metrics = runner.test()
    assert metrics, f'{_id(config_path)}: the test step returned no metrics'
    return library, metrics


@pytest.mark.parametrize('config_path', CONFIGS, ids=[_id(p) for p in CONFIGS])
def test_config_trains_and_tests_one_step(config_path, toy_root, tmp_path):
    library, metrics = run_one_step(config_path, toy_root, tmp_path)
    key = {'mmdet': 'coco/bbox_mAP', 'mmseg': 'mIoU', 'mmpretrain': 'accuracy/top1'}[library]
    assert any(k.endswith(key) for k in metrics), (key, sorted(metrics))


def test_configs_found():
    assert len(CONFIGS) >= 20
