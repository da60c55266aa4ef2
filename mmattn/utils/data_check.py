"""A data set's files checked before training starts, not at the iteration that reads them.

:func:`check_dataset` walks a built OpenMMLab data set (mmdet, mmseg and mmpretrain sets all
list ``img_path`` per sample; mmseg adds ``seg_map_path``) and

- stats every file (exists, not empty): one ``os.stat`` per file and a walk over the loaded
  annotations, cheap enough to run before every training on COCO's 118k images; with
  ``decode=True`` also decodes each image (threads; minutes for COCO);
- logs a summary: images, instances, instances ignored (crowd) and instances that mmdet's
  ``LoadAnnotations`` will drop because none of their polygons has 3 points (a 2-point polygon
  drops the whole instance, box included, without a word from mmdet: warned here once, with the
  count);
- raises :class:`DataCheckError` listing the first bad files and how many there are.
"""
import logging
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor

from mmengine.logging import print_log

__all__ = ['DataCheckError', 'check_dataset', 'samples_of']


class DataCheckError(FileNotFoundError):
    """Files a data set names are missing, empty or do not decode."""


def samples_of(dataset):
    """The innermost data sets of ``dataset`` (Concat/Repeat/ClassBalanced wrappers opened)."""
    if hasattr(dataset, 'datasets'):
        for d in dataset.datasets:
            yield from samples_of(d)
    elif hasattr(dataset, 'dataset') and not hasattr(dataset, 'data_list'):
        yield from samples_of(dataset.dataset)
    else:
        yield dataset


def _stat(path):
    try:
        size = os.stat(path).st_size
    except OSError:
        return 'missing'
    return 'empty (0 bytes)' if size == 0 else None


def _decode(path):
    import cv2
    import numpy as np
    try:
        with open(path, 'rb') as f:
            buf = np.frombuffer(f.read(), np.uint8)
    except OSError:
        return 'missing'
    if buf.size == 0:
        return 'empty (0 bytes)'
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return 'does not decode as an image' if img is None or img.size == 0 else None


def _short_polygons(instance) -> bool:
    """mmdet keeps a polygon only with an even number of coordinates and at least 3 points;
    an instance whose polygons are all shorter loses its box too."""
    mask = instance.get('mask')
    if not isinstance(mask, list) or not mask:
        return False
    return not any(len(p) % 2 == 0 and len(p) >= 6 for p in mask)


def check_dataset(dataset, name='dataset', decode=False, max_listed=10, workers=None) -> dict:
    """Checks every file ``dataset`` names; returns the summary, raises DataCheckError."""
    paths, images, instances, ignored, short = [], 0, 0, 0, 0
    for ds in samples_of(dataset):
        if hasattr(ds, 'full_init'):
            ds.full_init()
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            for key in ('img_path', 'seg_map_path'):
                if isinstance(info.get(key), str):
                    paths.append(info[key])
            images += 1
            for inst in info.get('instances') or ():
                instances += 1
                ignored += int(bool(inst.get('ignore_flag', 0)))
                short += int(_short_polygons(inst))
    unique = list(dict.fromkeys(paths))
    check = _decode if decode else _stat
    if decode:
        with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
            results = list(pool.map(check, unique, chunksize=64))
    else:
        results = [check(p) for p in unique]
    bad = [(p, why) for p, why in zip(unique, results) if why]
    summary = dict(images=images, files=len(unique), instances=instances, ignored=ignored,
                   dropped_short_polygons=short, bad_files=len(bad))
    print_log(f'data check ({name}, {"decode" if decode else "stat"} pass): {images} images, '
              f'{len(unique)} files, {instances} instances ({ignored} ignored as crowd, {short} '
              'to be dropped for polygons under 3 points), '
              f'{len(bad)} bad files', logger='current')
    if short:
        print_log(f'{name}: {short} instances have only polygons of fewer than 3 points; '
                  "mmdet's LoadAnnotations drops each of them entirely (box included). Fix the "
                  'annotations, or accept the loss.', logger='current', level=logging.WARNING)
    if bad:
        listed = '; '.join(f'{osp.abspath(p)} ({why})' for p, why in bad[:max_listed])
        more = f' ... and {len(bad) - max_listed} more' if len(bad) > max_listed else ''
        raise DataCheckError(f'{name}: {len(bad)} of {len(unique)} files cannot be used: '
                             f'{listed}{more}')
    return summary
