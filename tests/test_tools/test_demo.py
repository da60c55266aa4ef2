"""`make demo` end to end at the smallest size: data, training, COCO evaluation, PNG, bound;
and what its picture says about the predictions.

The full-length run (its mAP) is measured by hand and written in the README; here the same
script runs 2 iterations on 6 images, so the plumbing cannot rot.
"""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import REPO, run_py


@pytest.fixture(scope='module')
def demo():
    spec = importlib.util.spec_from_file_location('mmattn_demo',
                                                  osp.join(REPO, 'tools/misc/demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _predictions(labels, scores, boxes, hw=(100, 120)):
    from mmengine.structures import InstanceData
    boxes = torch.tensor(boxes, dtype=torch.float32)
    masks = torch.zeros(len(labels), *hw, dtype=torch.bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        masks[k, y0:y1, x0:x1] = True
    return InstanceData(labels=torch.tensor(labels), scores=torch.tensor(scores), bboxes=boxes,
                        masks=masks)


def test_picture_names_shapes_once_per_object(demo, monkeypatch):
    from mmengine.visualization import Visualizer

    from mmattn.datasets.toy import COCO_CATEGORIES, COCO_IDS
    label = {shape: COCO_IDS.index(cid) for shape, (cid, _) in COCO_CATEGORIES.items()}
    pred = _predictions(
        [label['triangle'], label['square'], label['circle'], label['circle'], 0, 0],
        [0.9, 0.8, 0.7, 0.6, 0.55, 0.3],
        [[10, 10, 40, 40],    # triangle
         [60, 10, 90, 40],    # square
         [10, 60, 40, 90],    # circle
         [14, 14, 44, 44],    # a second guess on the triangle's object: not drawn
         [60, 60, 90, 90],    # a COCO class the set never uses ('person')
         [100, 60, 110, 90]])  # below the score threshold
    drawn = demo.predictions_to_draw(pred, score_thr=0.5)
    assert [(d['name'], d['score']) for d in drawn] == [
        ('triangle', pytest.approx(0.9)), ('square', pytest.approx(0.8)),
        ('circle', pytest.approx(0.7)), ('other', pytest.approx(0.55))]
    texts = []
    draw_texts = Visualizer.draw_texts
    monkeypatch.setattr(Visualizer, 'draw_texts', lambda self, t, *a, **k: (
        texts.append(t), draw_texts(self, t, *a, **k))[1])
    vis = Visualizer(name='test_demo_picture')
    tile = demo.draw_tile(vis, np.full((100, 120, 3), 40, np.uint8), drawn, size=240)
    assert tile.shape == (240, 240, 3)
    assert texts == [['triangle 0.90', 'square 0.80', 'circle 0.70', 'other 0.55']]
    # the left edge of the best box (x = 2 * 10 in the tile) is in the triangle's green,
    # (50, 205, 50), blended with the background (40) and the mask
    assert demo.SHAPE_COLOURS['triangle'] == (50, 205, 50)
    edge = tile[70, 18:23].max(axis=0)
    assert edge[1] > 150 and max(edge[0], edge[2]) < 70, edge


@pytest.mark.slow
def test_demo_runs_and_enforces_its_bound(tmp_path):
    data, work = tmp_path / 'coco', tmp_path / 'work'
    args = ['tools/misc/demo.py', '--iters', '2', '--warmup', '1', '--num-train', '4',
            '--num-val', '2', '--data', str(data), '--work-dir', str(work)]
    # 2 iterations cannot reach the default bound of 0.5: the script must say so with exit 1
    proc = run_py(args, check=False, timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'below the bound' in proc.stderr
    # its own progress with an estimate; mmengine's INFO log only with --verbose
    assert '[demo] iteration 2/2: ' in proc.stdout and ' of training left' in proc.stdout
    assert 'Iter(train)' not in proc.stdout + proc.stderr
    summary = json.loads((work / 'demo_metrics.json').read_text())
    assert summary['backbone'] == 'AttnResNet'
    assert summary['config'].endswith('mask-rcnn_lesa-r50_fpn_1x_coco.py')
    assert summary['seconds_per_iter'] > 0
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert 0.0 <= summary[key] <= 1.0
    png = work / 'predictions.png'
    assert png.stat().st_size > 1000
    spec = json.loads((data / 'demo_data.json').read_text())
    assert spec['background'] == [40, 40, 40] and spec['num_train'] == 4
    # the data is generated once per spec: a second run reuses it, a bound of 0 passes
    mtime = osp.getmtime(data / 'annotations' / 'instances_train2017.json')
    proc = run_py(args + ['--min-map', '0'], check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert osp.getmtime(data / 'annotations' / 'instances_train2017.json') == mtime
