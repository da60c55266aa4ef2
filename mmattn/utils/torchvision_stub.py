"""A stand-in for torchvision, installed only where no working torchvision exists.

Why: mmpretrain imports torchvision at import time (to register torchvision's transforms
under ``torchvision/<Name>``, for ``InterpolationMode``, one base class and three box ops), but
on a CPU-only torch from PyPI there is no matching torchvision build: the PyPI wheel targets the
CUDA torch and fails at import (``operator torchvision::nms does not exist``). The mmattn
classification configs use only mmpretrain's own transforms, so mmpretrain works once its
import-time names exist.

What it is, honestly:
- installed by :func:`mmattn.compat.apply` only when ``import torchvision`` fails (missing or
  broken); a working torchvision is never touched. ``MMATTN_TORCHVISION_STUB=0`` turns it off.
- the module carries ``__mmattn_stub__ = True`` and a version string that says so;
- the box ops (``box_area``, ``box_iou``, ``generalized_box_iou``) are small exact pure-torch
  functions, and ``InterpolationMode`` is the same enum;
- everything else (torchvision transforms, functional ops) raises a RuntimeError naming the call
  and the reason when it is *used*, never silently does something else.
"""
import enum
import sys
import types

import torch

STUB_VERSION = '0.0.0+mmattn.stub'


class InterpolationMode(enum.Enum):
    NEAREST = 'nearest'
    NEAREST_EXACT = 'nearest-exact'
    BILINEAR = 'bilinear'
    BICUBIC = 'bicubic'
    BOX = 'box'
    HAMMING = 'hamming'
    LANCZOS = 'lanczos'


def _unavailable(name):

    def fn(*args, **kwargs):
        raise RuntimeError(
            f'torchvision.{name} was called, but torchvision is not installed (or does not '
            'import against this torch): mmattn put a stand-in in its place so that '
            'mmpretrain can be imported. Use mmpretrain/mmcv transforms (as the mmattn '
            'configs do), or install a torchvision build that matches your torch.')

    fn.__name__ = name.rsplit('.', 1)[-1]
    return fn


class _UnavailableTransform:
    """Base for the few torchvision transform classes other packages subclass at import."""

    _name = 'transforms.Transform'

    def __init__(self, *args, **kwargs):
        _unavailable(self._name)()


def _upcast(t):
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def box_area(boxes):
    boxes = _upcast(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _box_inter_union(boxes1, boxes2):
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = _upcast(rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area1[:, None] + area2 - inter


def box_iou(boxes1, boxes2):
    inter, union = _box_inter_union(boxes1, boxes2)
    return inter / union


def generalized_box_iou(boxes1, boxes2):
    inter, union = _box_inter_union(boxes1, boxes2)
    iou = inter / union
    lt = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = _upcast(rb - lt).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area


def build_modules():
    """Returns {module name: module} for the stand-in package."""
    tv = types.ModuleType('torchvision')
    tv.__version__ = STUB_VERSION
    tv.__mmattn_stub__ = True
    tv.__path__ = []  # a package, so ``import torchvision.x`` resolves from sys.modules
    tv.__doc__ = __doc__

    transforms = types.ModuleType('torchvision.transforms')
    transforms.__path__ = []
    transforms_transforms = types.ModuleType('torchvision.transforms.transforms')
    functional = types.ModuleType('torchvision.transforms.functional')
    for mod in (transforms, transforms_transforms, functional):
        mod.InterpolationMode = InterpolationMode
    # Subclassed by mmpretrain at import (MAERandomResizedCrop); unusable until constructed.
    rrc = type('RandomResizedCrop', (_UnavailableTransform, ),
               {'_name': 'transforms.RandomResizedCrop'})
    transforms.RandomResizedCrop = transforms_transforms.RandomResizedCrop = rrc
    for fname in ('resized_crop', 'pil_to_tensor', 'to_tensor', 'resize', 'normalize'):
        setattr(functional, fname, _unavailable(f'transforms.functional.{fname}'))
    transforms.functional = functional
    transforms.transforms = transforms_transforms

    ops = types.ModuleType('torchvision.ops')
    ops.__path__ = []
    boxes = types.ModuleType('torchvision.ops.boxes')
    for fn in (box_area, box_iou, generalized_box_iou, _upcast):
        setattr(boxes, fn.__name__, fn)
        setattr(ops, fn.__name__, fn)
    ops.boxes = boxes
    ops.nms = _unavailable('ops.nms')

    tv.transforms = transforms
    tv.ops = ops
    return {
        'torchvision': tv,
        'torchvision.transforms': transforms,
        'torchvision.transforms.transforms': transforms_transforms,
        'torchvision.transforms.functional': functional,
        'torchvision.ops': ops,
        'torchvision.ops.boxes': boxes,
    }


def install():
    """Puts the stand-in into ``sys.modules`` (the caller checked that no torchvision works)."""
    for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
        del sys.modules[name]
    sys.modules.update(build_modules())


def is_stub(module=None):
    module = module if module is not None else sys.modules.get('torchvision')
    return bool(getattr(module, '__mmattn_stub__', False))
