"""make_toy_cfg changes data roots, sizes, schedule (and, when asked, score_thr / clip_grad) only."""
import os.path as osp

from mmengine.config import Config

from conftest import REPO

import mmattn  # noqa: F401
from mmattn.testing import make_toy_cfg

DET = osp.join(REPO, 'configs', 'la_layer', 'faster-rcnn_s50_fpn_ms-range-1x_coco.py')
SEG = osp.join(REPO, 'configs', 'la_layer', 'deeplabv3_la-r50-d8_4xb4-120e_ade20k-512x512.py')


def _resizes(pipeline):
    return [t for t in pipeline if t['type'] in ('Resize', 'RandomResize', 'RandomChoiceResize')]


def test_det_roots_sizes_schedule():
    cfg = Config.fromfile(DET)
    toy = make_toy_cfg(cfg, '/toy/coco', max_iters=3, batch_size=2)
    ds = toy.train_dataloader.dataset
    assert ds.data_root == '/toy/coco/'
    assert toy.val_evaluator.ann_file.startswith('/toy/coco/annotations/')
    # sizes scale by 128 / 800; the real config keeps its sizes
    real = _resizes(cfg.train_dataloader.dataset.pipeline)[0]
    small = _resizes(ds.pipeline)[0]
    key = 'scale' if 'scale' in real else 'scales'
    flat = lambda v: [x for t in v for x in (t if isinstance(t, (list, tuple)) else [t])]  # noqa
    assert [round(x * 128 / 800) for x in flat(real[key])] == flat(small[key])
    assert toy.train_cfg == dict(type='IterBasedTrainLoop', max_iters=3, val_interval=3)
    assert toy.train_dataloader.batch_size == 2 and toy.train_dataloader.num_workers == 0
    # the model is untouched except pretrained weights (nothing can be downloaded)
    assert cfg.model.backbone.init_cfg['type'] == 'Pretrained'
    assert toy.model.backbone.init_cfg is None
    assert toy.model.roi_head == cfg.model.roi_head


def test_clip_grad_only_where_the_config_has_none():
    cfg = Config.fromfile(DET)
    assert not cfg.optim_wrapper.get('clip_grad')  # the paper's recipe: no clip
    assert not make_toy_cfg(cfg, '/toy/coco').optim_wrapper.get('clip_grad')
    toy = make_toy_cfg(cfg, '/toy/coco', clip_grad=35)
    assert toy.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)
    cfg.optim_wrapper.clip_grad = dict(max_norm=5, norm_type=2)
    assert make_toy_cfg(cfg, '/toy/coco', clip_grad=35).optim_wrapper.clip_grad.max_norm == 5


def test_seg_crop_scaled():
    cfg = Config.fromfile(SEG)
    toy = make_toy_cfg(cfg, '/toy/ade')
    crop = [t for t in toy.train_dataloader.dataset.pipeline if t['type'] == 'RandomCrop'][0]
    real = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'RandomCrop'][0]
    assert tuple(crop['crop_size']) == tuple(round(x * 64 / 512) for x in real['crop_size'])
