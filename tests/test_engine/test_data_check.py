"""The data check before training: every file of the data set exists (stat pass) or decodes
(decode pass), a summary with the instances mmdet will drop, the first bad files listed."""
import json
import logging
import shutil

import pytest

import mmattn  # noqa: F401
from conftest import REPO
from mmattn.utils.data_check import DataCheckError, check_dataset


@pytest.fixture
def coco(toy_root, tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(toy_root / 'coco', root)
    return root


def _dataset(root):
    from mmdet.datasets import CocoDataset
    return CocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                       data_prefix=dict(img='train2017/'), filter_cfg=None, pipeline=[])


def test_clean_data_set_passes_with_a_summary(coco):
    summary = check_dataset(_dataset(coco), decode=True)
    assert summary['images'] == summary['files'] == 8 and summary['bad_files'] == 0
    assert summary['instances'] >= 8 and summary['dropped_short_polygons'] == 0


def test_missing_and_corrupt_images_are_listed(coco):
    images = sorted((coco / 'train2017').glob('*.jpg'))
    images[1].unlink()
    images[4].write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    with pytest.raises(DataCheckError) as info:
        check_dataset(_dataset(coco), name='train_dataloader.dataset')
    text = str(info.value)
    assert text.startswith('train_dataloader.dataset: 1 of 8 files cannot be used')
    assert f'{images[1]} (missing)' in text and '\n' not in text
    with pytest.raises(DataCheckError, match='2 of 8 files') as info:  # the decode pass
        check_dataset(_dataset(coco), decode=True)
    assert f'{images[4]} (does not decode as an image)' in str(info.value)


def test_two_point_polygons_are_counted_and_warned_once(coco, monkeypatch):
    """mmdet's LoadAnnotations keeps a polygon only with >= 3 points and ignores an instance
    whose polygons are all shorter, box included, without a word."""
    from mmattn.utils import data_check
    path = coco / 'annotations' / 'instances_train2017.json'
    ann = json.loads(path.read_text())
    ann['annotations'][0]['segmentation'] = [[10.0, 10.0, 30.0, 30.0]]
    ann['annotations'][2]['segmentation'] = [[5.0, 5.0, 9.0, 9.0]]
    path.write_text(json.dumps(ann))
    logged = []
    monkeypatch.setattr(data_check, 'print_log',
                        lambda msg, logger=None, level=logging.INFO: logged.append((level, msg)))
    summary = check_dataset(_dataset(coco))
    assert summary['dropped_short_polygons'] == 2
    warnings = [m for level, m in logged if level == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith('dataset: 2 instances have only '
                                                         'polygons of fewer than 3 points')
    # what the warning says mmdet does: the instance (box included) is ignored in training
    from mmdet.datasets.transforms import LoadAnnotations
    dataset = _dataset(coco)
    image_id = ann['annotations'][0]['image_id']
    idx = next(i for i in range(len(dataset)) if dataset.get_data_info(i)['img_id'] == image_id)
    info = dataset.get_data_info(idx)
    short = [j for j, inst in enumerate(info['instances']) if data_check._short_polygons(inst)]
    out = LoadAnnotations(with_bbox=True, with_mask=True)(
        dict(info, ori_shape=(info['height'], info['width'])))
    assert short and all(out['gt_ignore_flags'][j] for j in short)
    assert not any(out['gt_ignore_flags'][j] for j in range(len(info['instances']))
                   if j not in short)


@pytest.mark.slow
def test_runner_checks_the_files_before_the_first_iteration(toy_root, tmp_path):
    """Any Runner (mmattn imported): a missing image stops train() before iteration 1."""
    from mmengine.config import Config

    from mmattn.apis import build_runner_from_cfg
    from mmattn.testing import make_toy_cfg
    data = tmp_path / 'imagenet'
    shutil.copytree(toy_root / 'imagenet', data)
    victim = sorted((data / 'train').rglob('*.JPEG')) or sorted((data / 'train').rglob('*.*'))
    victim[0].unlink()
    cfg = make_toy_cfg(Config.fromfile(f'{REPO}/configs/aa/aa-r50_8xb32-100e_in1k.py'),
                       str(data), max_iters=1, val=False)
    cfg.model.backbone.update(base_channels=16, stem_channels=16)
    cfg.model.head.in_channels = 512
    cfg.work_dir = str(tmp_path / 'work')
    runner = build_runner_from_cfg(cfg)
    with pytest.raises(DataCheckError, match=r'train_dataloader.dataset: 1 of \d+ files'):
        runner.train()
    assert runner.iter == 0
