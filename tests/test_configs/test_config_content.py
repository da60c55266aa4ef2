"""What the configs promise beyond their schedules: the test-dev variants write the results
JSON for the evaluation server, the higher-resolution rows train at their resolution, and every
local checkpoint a config loads is one that a config or converter of this repository writes.
"""
import glob
import json
import os.path as osp
import shutil
import uuid

import pytest

from config_cache import load as _cfg
from conftest import REPO


def _t4_configs():
    import yaml
    with open(osp.join(REPO, 'docs', 'paper_tables', 'lesa.yml')) as f:
        lesa = yaml.safe_load(f)
    t4 = next(t for t in lesa['tables'] if t['id'] == 'T4')
    return [osp.relpath(r['config'], 'configs') for r in t4['rows']]


@pytest.mark.parametrize('rel', _t4_configs())
def test_test_dev_variant_of_every_table4_row(rel):
    """LESA Table 4 is on test-dev2017: each of its rows has a `_test-dev` config that tests the
    same model with the same pipeline on test-dev and only writes the results JSON."""
    variant = rel[:-3] + '_test-dev.py'
    assert osp.isfile(osp.join(REPO, 'configs', variant)), variant
    row, dev = _cfg(rel), _cfg(variant)
    assert dev.model == row.model
    assert dev.test_dataloader.dataset.pipeline == row.test_dataloader.dataset.pipeline
    ds, ev = dev.test_dataloader.dataset, dev.test_evaluator
    assert ds.ann_file == 'annotations/image_info_test-dev2017.json'
    assert ds.data_prefix.img == 'test2017/'
    assert ev.format_only is True
    assert ev.ann_file.endswith('annotations/image_info_test-dev2017.json')
    assert osp.basename(osp.dirname(ev.outfile_prefix)) == osp.basename(variant)[:-3]
    assert sorted(ev.metric) == sorted(row.test_evaluator.metric)


@pytest.mark.slow
def test_test_dev_writes_the_results_json(toy_root, tmp_path):
    """The toy set in test-dev layout (test2017/ + image_info_test-dev2017.json: images and
    categories, no annotations), a test-dev config run on it: bbox and segm JSON for every
    image, nothing evaluated."""
    from mmattn.apis import build_runner_from_cfg
    from mmattn.testing import make_toy_cfg
    src = toy_root / 'coco'
    root = tmp_path / 'coco'
    shutil.copytree(src / 'val2017', root / 'test2017')
    (root / 'annotations').mkdir(parents=True)
    with open(src / 'annotations' / 'instances_val2017.json') as f:
        val = json.load(f)
    info = dict(images=val['images'], categories=val['categories'])
    with open(root / 'annotations' / 'image_info_test-dev2017.json', 'w') as f:
        json.dump(info, f)

    cfg = _cfg('lesa/mask-rcnn_lesa-r50_fpn_1x_coco_test-dev.py')
    object.__setattr__(cfg, '_format_python_code', False)
    cfg = make_toy_cfg(cfg, str(root), max_iters=1, val=False, score_thr=0.0)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.name = f'vis_{uuid.uuid4().hex}'
    prefix = str(tmp_path / 'out' / 'results')
    cfg.test_evaluator.outfile_prefix = prefix
    assert cfg.test_evaluator.ann_file == str(root / 'annotations' /
                                              'image_info_test-dev2017.json')
    runner = build_runner_from_cfg(cfg)
    metrics = runner.test()
    assert not any(k.endswith('mAP') for k in metrics), metrics  # format_only: no evaluation
    ids = {im['id'] for im in info['images']}
    for kind in ('bbox', 'segm'):
        with open(f'{prefix}.{kind}.json') as f:
            results = json.load(f)
        assert results and {r['image_id'] for r in results} == ids, kind
        assert {'image_id', 'category_id', 'score'} <= set(results[0])


def _resize_scales(pipeline):
    out = []
    for t in pipeline:
        if t['type'] in ('Resize', 'RandomResize'):
            s = t['scale']
            out.append(max(max(x) if isinstance(x, (list, tuple)) else x for x in s)
                       * (max(t.get('ratio_range') or (1, 1))))
        elif t['type'] == 'RandomChoice':
            out += [m for branch in t['transforms'] for m in _resize_scales(branch)]
    return out


@pytest.mark.parametrize('rel', sorted(
    osp.relpath(p, osp.join(REPO, 'configs'))
    for p in glob.glob(osp.join(REPO, 'configs', 'lesa', '*-1280*.py'))))
def test_higher_resolution_rows_train_and_test_at_1280(rel):
    """The LESA ^h rows: "resized to 1280x1280", for training as for testing."""
    cfg = _cfg(rel)
    train = _resize_scales(cfg.train_dataloader.dataset.pipeline)
    test = _resize_scales(cfg.test_dataloader.dataset.pipeline)
    assert test == [1280], test
    assert train and min(train) >= 1280, train


def test_local_checkpoints_are_written_by_this_repository():
    """A config's `checkpoints/NAME.pth` must be named by the ImageNet config that trains it
    (or the converter that writes it): the EANet LA configs once loaded a file nothing wrote."""
    import re
    configs = [p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)]
    producers = ''
    for p in configs:
        if '_in1k' in osp.basename(p):
            producers += open(p).read()
    for p in glob.glob(osp.join(REPO, 'tools', 'model_converters', '*.py')):
        producers += open(p).read()
    missing = {}
    for p in configs:
        if '_in1k' in osp.basename(p):
            continue
        for name in re.findall(r"checkpoint='(checkpoints/[^']+\.pth)'", open(p).read()):
            if producers.count(name) == 0:
                missing[osp.relpath(p, REPO)] = name
    assert not missing, missing


@pytest.mark.parametrize('rel', ['lesa/cascade-mask-rcnn_r50_fpn_1x_coco.py',
                                 'lesa/mask-rcnn_r50_fpn_1x_coco.py'])
def test_toy_cfg_scales_shared_pipelines_once(rel):
    """`{{_base_.lesa_1024.mask.train}}` and `val_dataloader = test_dataloader = ...` leave one
    dict under several keys; the toy config must scale it once (1024 -> 1024 * 128 / 800), not
    once per key (the one-step runs once tested these configs on 4-pixel images)."""
    import copy

    from mmattn.testing import make_toy_cfg
    toy = make_toy_cfg(copy.deepcopy(_cfg(rel)), '/nonexistent/coco', max_iters=1)
    assert toy.train_dataloader.dataset.pipeline[2].scale == (164, 164)
    assert toy.val_dataloader.dataset.pipeline[1].scale == (164, 164)
    assert toy.test_dataloader.dataset.pipeline[1].scale == (164, 164)
