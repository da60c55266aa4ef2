"""Small generated data sets in the exact COCO, ADE20K and ImageNet formats.

No data set can be downloaded where this project is tested, so the real loading code of mmdet,
mmseg and mmpretrain (``CocoDataset``, ``ADE20KDataset``, ``ImageNet``) is exercised on data made
here. Classes differ by *shape* only (circle, square, triangle); colours are random, so a model
must learn shape to score. Everything is deterministic in ``seed``.

Shape classes carry real category ids and names of each data set, so the real configs (80 COCO
classes, 150 ADE20K classes, 1000 ImageNet classes) run unchanged and the evaluation code sees the
categories it knows:

============  =====================  =====================  ==========
shape         COCO (id, name)        ADE20K value (name)    ImageNet
============  =====================  =====================  ==========
circle        34 ``frisbee``         2 ``building``         label 0
square        73 ``laptop``          3 ``sky``              label 1
triangle      38 ``kite``            4 ``floor``            label 2
background    (stuff 157 sky-other)  1 ``wall``             -
============  =====================  =====================  ==========
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ('circle', 'square', 'triangle')
# COCO category (id, name) per shape: real ids/names so the 80-class configs load them.
COCO_CATEGORIES = {'circle': (34, 'frisbee'), 'square': (73, 'laptop'), 'triangle': (38, 'kite')}
# The 80 COCO thing-category ids, in mmdet's class order. The toy json lists all 80 (with
# mmdet's names) so that mmdet's label index i means the same class as in real COCO.
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
            27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50,
            51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75,
            76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)


def coco_label_shapes():
    """``{mmdet label index (0-79): shape}`` for the three shape classes of :func:`make_coco`."""
    return {COCO_IDS.index(cid): shape for shape, (cid, _) in COCO_CATEGORIES.items()}


# COCO-stuff label of the background in ``stuffthingmaps`` (id 157 'sky-other' -> 156).
COCO_STUFF_BACKGROUND = 156
# ADE20K annotation values (1-based, 0 = "other"; mmseg's reduce_zero_label maps v -> v-1).
ADE_BACKGROUND = 1  # 'wall'
ADE_LABELS = {'circle': 2, 'square': 3, 'triangle': 4}  # 'building', 'sky', 'floor'


def _colour(rng, avoid=None, min_dist=120):
    """A random RGB colour at least ``min_dist`` (L1) away from ``avoid``."""
    for _ in range(100):
        c = rng.randint(0, 256, size=3)
        if avoid is None or np.abs(c - avoid).sum() >= min_dist:
            return c
    return 255 - np.asarray(avoid)


def _shape_polygon(rng, shape, cx, cy, r):
    """Vertices (x, y) of a shape of circumradius ``r``, randomly rotated (not circles)."""
    if shape == 'circle':
        n = 32
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    else:
        n = 4 if shape == 'square' else 3
        angles = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi / n
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)


def _draw_scene(rng, width, height, max_objects, radius=(0.14, 0.26), background=None):
    """A background and 1..max_objects non-overlapping shapes of random colours.

    ``radius``: range of the shapes' circumradius as a fraction of the shorter side.
    ``background``: an RGB colour for every image, or None for a random one per image.
    Returns the RGB image, a list of (shape, polygon) and a per-pixel instance index map
    (0 = background, k = k-th object).
    """
    bg = _colour(rng) if background is None else np.asarray(background)
    img = np.empty((height, width, 3), np.float32)
    img[:] = bg
    img += rng.normal(0, 8, size=img.shape)
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    index = Image.new('L', (width, height), 0)
    draw, draw_index = ImageDraw.Draw(canvas), ImageDraw.Draw(index)
    objects, discs = [], []
    side = min(width, height)
    for _ in range(rng.randint(1, max_objects + 1)):
        for _try in range(20):
            r = rng.uniform(*radius) * side
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            if all((cx - x)**2 + (cy - y)**2 > (r + rr + 2)**2 for x, y, rr in discs):
                break
        else:
            continue
        shape = SHAPES[rng.randint(len(SHAPES))]
        poly = _shape_polygon(rng, shape, cx, cy, r)
        xy = [tuple(p) for p in poly]
        draw.polygon(xy, fill=tuple(int(v) for v in _colour(rng, avoid=bg)))
        draw_index.polygon(xy, fill=len(objects) + 1)
        discs.append((cx, cy, r))
        objects.append((shape, poly))
    return canvas, objects, np.asarray(index)


def _size(rng, img_size, vary):
    if not vary:
        return img_size, img_size
    # keep-ratio pipelines and non-square batches get exercised: sides in [0.75, 1.25] x size
    w, h = (int(img_size * f) for f in rng.uniform(0.75, 1.25, size=2))
    return max(w, 32), max(h, 32)


def make_coco(root, num_train=64, num_val=16, img_size=128, seed=0, max_objects=3,
              vary_size=True, radius=(0.14, 0.26), background=None):
    """COCO-format instance segmentation: ``{train,val}2017/*.jpg``,
    ``annotations/instances_{train,val}2017.json`` (polygons) and the COCO-stuff
    ``stuffthingmaps/{train,val}2017/*.png`` semantic maps that HTC's semantic head reads."""
    from mmdet.datasets import CocoDataset
    names = CocoDataset.METAINFO['classes']
    assert len(names) == len(COCO_IDS)
    for cid, name in COCO_CATEGORIES.values():
        assert names[COCO_IDS.index(cid)] == name, (cid, name)
    categories = [dict(id=cid, name=name, supercategory='coco') for cid, name in
                  zip(COCO_IDS, names)]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, num, split_seed in (('train', num_train, seed), ('val', num_val, seed + 10007)):
        rng = np.random.RandomState(split_seed)
        img_dir = osp.join(root, f'{split}2017')
        seg_dir = osp.join(root, 'stuffthingmaps', f'{split}2017')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(seg_dir, exist_ok=True)
        images, annotations = [], []
        for i in range(num):
            w, h = _size(rng, img_size, vary_size)
            canvas, objects, index = _draw_scene(rng, w, h, max_objects, radius, background)
            image_id = i + 1
            name = f'{image_id:012d}'
            canvas.save(osp.join(img_dir, name + '.jpg'), quality=95)
            seg = np.full((h, w), COCO_STUFF_BACKGROUND, np.uint8)
            for k, (shape, poly) in enumerate(objects):
                seg[index == k + 1] = COCO_CATEGORIES[shape][0] - 1
                x0, y0 = np.clip(poly.min(0), 0, [w, h])
                x1, y1 = np.clip(poly.max(0), 0, [w, h])
                area = float((index == k + 1).sum())
                annotations.append(
                    dict(id=len(annotations) + 1, image_id=image_id,
                         category_id=COCO_CATEGORIES[shape][0],
                         segmentation=[np.round(poly, 2).reshape(-1).tolist()],
                         area=area, bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                         iscrowd=0))
            Image.fromarray(seg).save(osp.join(seg_dir, name + '.png'))
            images.append(dict(id=image_id, file_name=name + '.jpg', width=w, height=h))
        with open(osp.join(root, 'annotations', f'instances_{split}2017.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories,
                           info=dict(description=f'mmattn toy shapes, seed {seed}'),
                           licenses=[]), f)
    return root


def make_ade20k(root, num_train=32, num_val=8, img_size=128, seed=0, max_objects=3,
                vary_size=True):
    """ADE20K-format semantic segmentation: ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png`` (0 = other, 1..150 classes)."""
    for split, num, split_seed in (('training', num_train, seed),
                                   ('validation', num_val, seed + 10007)):
        rng = np.random.RandomState(split_seed)
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        prefix = 'ADE_train_' if split == 'training' else 'ADE_val_'
        for i in range(num):
            w, h = _size(rng, img_size, vary_size)
            canvas, objects, index = _draw_scene(rng, w, h, max_objects)
            label = np.full((h, w), ADE_BACKGROUND, np.uint8)
            for k, (shape, _) in enumerate(objects):
                label[index == k + 1] = ADE_LABELS[shape]
            name = f'{prefix}{i + 1:08d}'
            canvas.save(osp.join(root, 'images', split, name + '.jpg'), quality=95)
            Image.fromarray(label).save(osp.join(root, 'annotations', split, name + '.png'))
    return root


def make_imagenet(root, num_train_per_class=8, num_val_per_class=2, img_size=64, seed=0):
    """ImageNet-format classification: ``train/<wnid>/*.JPEG``, ``val/*.JPEG`` and
    ``meta/{train,val}.txt`` (``path label`` lines), one shape per image, label = shape index."""
    wnids = [f'n{idx:08d}' for idx in range(len(SHAPES))]
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, per_class, split_seed in (('train', num_train_per_class, seed),
                                         ('val', num_val_per_class, seed + 10007)):
        rng = np.random.RandomState(split_seed)
        lines = []
        for n in range(per_class * len(SHAPES)):
            label = n % len(SHAPES)
            bg = _colour(rng)
            img = np.clip(np.full((img_size, img_size, 3), bg, np.float32) +
                          rng.normal(0, 8, size=(img_size, img_size, 3)), 0, 255)
            canvas = Image.fromarray(img.astype(np.uint8))
            r = rng.uniform(0.25, 0.4) * img_size
            c = rng.uniform(r, img_size - r, size=2)
            poly = _shape_polygon(rng, SHAPES[label], c[0], c[1], r)
            ImageDraw.Draw(canvas).polygon([tuple(p) for p in poly],
                                           fill=tuple(int(v) for v in _colour(rng, avoid=bg)))
            if split == 'train':
                rel = f'{wnids[label]}/{wnids[label]}_{n:05d}.JPEG'
            else:
                rel = f'ILSVRC2012_val_{n + 1:08d}.JPEG'
            path = osp.join(root, split, rel)
            os.makedirs(osp.dirname(path), exist_ok=True)
            canvas.save(path, quality=95)
            lines.append(f'{rel} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root
