"""The generated data sets: deterministic by seed, and read by the real dataset classes."""
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from mmattn.datasets import toy


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            h.update(os.path.relpath(p, root).encode())
            with open(p, 'rb') as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_bit_identical_for_same_seed(tmp_path):
    for kind, fn in (('coco', toy.make_coco), ('ade', toy.make_ade20k)):
        a = fn(str(tmp_path / f'{kind}_a'), 3, 2, 64, seed=5)
        b = fn(str(tmp_path / f'{kind}_b'), 3, 2, 64, seed=5)
        c = fn(str(tmp_path / f'{kind}_c'), 3, 2, 64, seed=6)
        assert _digest(a) == _digest(b)
        assert _digest(a) != _digest(c)


def test_coco_annotations_match_pixels(toy_root):
    with open(toy_root / 'coco/annotations/instances_train2017.json') as f:
        coco = json.load(f)
    assert len(coco['categories']) == 80
    used = {c['name'] for c in coco['categories']
            if c['id'] in {a['category_id'] for a in coco['annotations']}}
    assert used == {'frisbee', 'laptop', 'kite'}
    ann = coco['annotations'][0]
    img = next(i for i in coco['images'] if i['id'] == ann['image_id'])
    seg = np.asarray(Image.open(toy_root / 'coco/stuffthingmaps/train2017' /
                                img['file_name'].replace('.jpg', '.png')))
    assert seg.shape == (img['height'], img['width'])
    # the semantic map labels the instance's pixels with its COCO-stuff class (id - 1)
    assert (seg == ann['category_id'] - 1).sum() >= ann['area'] * 0.9
    from pycocotools import mask as mask_util
    rle = mask_util.frPyObjects(ann['segmentation'], img['height'], img['width'])
    assert abs(float(mask_util.area(mask_util.merge(rle))) - ann['area']) < 0.15 * ann['area']


def test_mmdet_coco_dataset_reads_it(toy_root):
    import mmattn  # noqa: F401
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds = CocoDataset(data_root=str(toy_root / 'coco'),
                     ann_file='annotations/instances_val2017.json',
                     data_prefix=dict(img='val2017/'), test_mode=True,
                     pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    with open(toy_root / 'coco/annotations/instances_val2017.json') as f:
        assert len(ds) == len(json.load(f)['images']) >= 1
    item = ds[0]
    assert item['img'].shape[:2] == item['ori_shape']
    assert len(item['gt_bboxes']) == len(item['gt_masks']) >= 1
    labels = set()
    for i in range(len(ds)):
        labels |= set(ds[i]['gt_bboxes_labels'].tolist())
    names = [ds.metainfo['classes'][i] for i in labels]
    assert set(names) <= {'frisbee', 'laptop', 'kite'}


def test_mmseg_ade20k_dataset_reads_it(toy_root):
    import mmattn  # noqa: F401
    from mmseg.datasets import ADE20KDataset
    from mmseg.utils import register_all_modules
    register_all_modules()
    ds = ADE20KDataset(data_root=str(toy_root / 'ade20k'),
                       data_prefix=dict(img_path='images/validation',
                                        seg_map_path='annotations/validation'),
                       pipeline=[dict(type='LoadImageFromFile'),
                                 dict(type='LoadAnnotations', reduce_zero_label=True)])
    assert len(ds) == 2
    seg = ds[0]['gt_seg_map']
    assert set(np.unique(seg).tolist()) <= {0, 1, 2, 3}  # wall, building, sky, floor


def test_mmpretrain_imagenet_dataset_reads_it(toy_root):
    import mmattn  # noqa: F401
    from mmpretrain.datasets import ImageNet
    ds = ImageNet(data_root=str(toy_root / 'imagenet'), split='train',
                  pipeline=[dict(type='LoadImageFromFile')])
    assert len(ds) == 6
    assert sorted({ds.get_gt_labels()[i] for i in range(len(ds))}) == [0, 1, 2]
    val = ImageNet(data_root=str(toy_root / 'imagenet'), split='val')
    assert len(val) == 3


def test_data_root_missing_is_a_clear_error(tmp_path):
    import mmattn  # noqa: F401
    from mmdet.datasets import CocoDataset
    with pytest.raises(FileNotFoundError, match='nowhere'):
        CocoDataset(data_root=str(tmp_path / 'nowhere'),
                    ann_file='annotations/instances_val2017.json',
                    data_prefix=dict(img='val2017/'), pipeline=[])


def test_coco_label_shapes_follow_the_loaded_labels(toy_root):
    """The label index mmdet gives each shape's annotations is the one coco_label_shapes names
    (the demo picture writes shapes, not the borrowed COCO names, from it)."""
    from mmdet.datasets import CocoDataset
    ds = CocoDataset(data_root=str(toy_root / 'coco'),
                     ann_file='annotations/instances_train2017.json',
                     data_prefix=dict(img='train2017/'), pipeline=[], test_mode=True)
    with open(toy_root / 'coco/annotations/instances_train2017.json') as f:
        coco = json.load(f)
    shape_of_id = {cid: shape for shape, (cid, _) in toy.COCO_CATEGORIES.items()}
    expected = sorted(shape_of_id[a['category_id']] for a in coco['annotations'])
    shapes = toy.coco_label_shapes()
    got = sorted(shapes[inst['bbox_label']] for i in range(len(ds))
                 for inst in ds.get_data_info(i)['instances'])
    assert got == expected and set(shapes.values()) == set(toy.SHAPES)
