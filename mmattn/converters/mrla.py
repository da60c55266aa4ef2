"""Official MRLA checkpoints (github.com/joyfang1106/MRLA) -> mmattn ``MRLAResNet`` keys.

The official ImageNet training saves ``{'state_dict', 'epoch', 'best_acc1', 'optimizer'}``
with DataParallel's ``module.`` prefix and torchvision-style names. What changes:

* ``module.`` is dropped;
* ``*.mrla.mla.*`` (older code) becomes ``*.mrla.mrla.*``;
* MRLA-base stores its stages as ``stages.{0..3}.i`` -> ``layer{1..4}.i``, and its deep stem
  ``conv1.{0,1,3,4,6}`` + ``bn1`` -> mmseg's ``stem.{0,1,3,4,6}`` + ``stem.7``;
* ``fc.*`` (ImageNet head) -> ``head.fc.*`` for an mmpretrain ``ImageClassifier``
  (``target='classifier'``, backbone keys then get ``backbone.``), unplaced for a backbone.

Everything inside a block keeps its name (``conv1/bn1/.../downsample.0/1``, ``mrla.mrla.Wq``,
``mrla.lambda_t``, ``bn_mrla``). Keys matching nothing known (SE/ECA modules of the
official ablations, anything else) are left out and listed in the report.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Tuple

__all__ = ['convert_mrla', 'TARGETS']

TARGETS = ('backbone', 'classifier')

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_BLOCK_KEY = re.compile(
    r'^layer[1-4]\.\d+\.('
    r'conv[123]\.weight|bn[123]\.' + _BN + r'|downsample\.0\.weight|downsample\.1\.' + _BN +
    r'|mrla\.mrla\.W[qkv]\.weight|mrla\.lambda_t|bn_mrla\.' + _BN + r')$')
_PLAIN_STEM_KEY = re.compile(r'^(conv1\.weight|bn1\.' + _BN + r')$')
_DEEP_STEM_KEY = re.compile(r'^conv1\.(?P<idx>[0-6])\.(?P<rest>.+)$')
_HEAD_KEY = re.compile(r'^fc\.(weight|bias)$')


def _unwrap(checkpoint: Mapping) -> Tuple[Mapping, dict]:
    """The state dict inside an official checkpoint (or the state dict itself) and its
    metadata (epoch, best_acc1)."""
    meta = {}
    for name in ('epoch', 'best_acc1', 'arch'):
        if name in checkpoint:
            value = checkpoint[name]
            if hasattr(value, 'numel') and value.numel() == 1:  # best_acc1 is a tensor
                value = value.item()
            meta[name] = value
    for name in ('state_dict', 'model'):
        if name in checkpoint and isinstance(checkpoint[name], Mapping):
            return checkpoint[name], meta
    return checkpoint, meta


def _strip_module(key: str) -> str:
    return key[len('module.'):] if key.startswith('module.') else key


def convert_mrla(checkpoint: Mapping,
                 target: str = 'backbone',
                 require_mrla: bool = False) -> Tuple[Dict, dict]:
    """Convert an official MRLA checkpoint or state dict to mmattn keys.

    Args:
        checkpoint: ``{'state_dict': ..., 'epoch': ..., ...}`` as saved by the official
            ``train.py``, or a bare state dict.
        target: 'backbone' (keys of :class:`MRLAResNet`, as loaded by a backbone's
            ``init_cfg=dict(type='Pretrained', ...)``) or 'classifier' (keys of an mmpretrain
            ``ImageClassifier``: ``backbone.*`` and ``head.fc.*``).
        require_mrla: raise a ValueError naming the keys found when nothing converts or no
            MRLA tensor is among the converted ones (a torchvision ResNet, a detector
            checkpoint); the command-line converter sets it. Default False: convert what
            matches and report ``mrla_type=None``.

    Returns:
        ``(state_dict, report)``: the converted tensors (the same tensor objects) and a dict
        with ``unplaced`` (source keys left out, sorted), ``mrla_type`` ('light' when
        ``lambda_t`` keys exist, 'base' when MRLA keys exist without them, else None),
        ``deep_stem`` (bool), ``num_converted`` and ``meta`` (epoch, best_acc1).
    """
    if target not in TARGETS:
        raise ValueError(f'convert_mrla: target={target!r} is not one of {TARGETS}')
    state_dict, meta = _unwrap(checkpoint)
    prefix = 'backbone.' if target == 'classifier' else ''
    deep_stem = any(_DEEP_STEM_KEY.match(_strip_module(k)) for k in state_dict)

    out = OrderedDict()
    unplaced = []
    for src_key, value in state_dict.items():
        key = _strip_module(src_key).replace('.mrla.mla.', '.mrla.mrla.')
        key = re.sub(r'^stages\.([0-3])\.', lambda m: f'layer{int(m.group(1)) + 1}.', key)
        new_key = None
        if _BLOCK_KEY.match(key):
            new_key = prefix + key
        elif deep_stem and key.startswith('conv1.'):
            m = _DEEP_STEM_KEY.match(key)
            if m and m.group('idx') in '01346':
                new_key = f"{prefix}stem.{m.group('idx')}.{m.group('rest')}"
        elif deep_stem and re.match(r'^bn1\.' + _BN + '$', key):
            new_key = prefix + 'stem.7.' + key[len('bn1.'):]
        elif _PLAIN_STEM_KEY.match(key):
            new_key = prefix + key
        elif _HEAD_KEY.match(key) and target == 'classifier':
            new_key = 'head.' + key
        if new_key is None:
            unplaced.append(src_key)
            continue
        if new_key in out:
            raise ValueError(f'convert_mrla: two source keys map to {new_key!r} '
                             f'(the second is {src_key!r})')
        out[new_key] = value

    if any(k.endswith('mrla.lambda_t') for k in out):
        mrla_type = 'light'
    elif any('.mrla.mrla.' in k for k in out):
        mrla_type = 'base'
    else:
        mrla_type = None
    report = dict(unplaced=sorted(unplaced), mrla_type=mrla_type, deep_stem=deep_stem,
                  num_converted=len(out), meta=meta)
    if require_mrla and (not out or mrla_type is None):
        found = list(state_dict)
        shown = ', '.join(found[:5]) + (f', ... ({len(found)} keys)' if len(found) > 5 else '')
        raise ValueError(f'convert_mrla: no MRLA tensor (*.mrla.mrla.W[qkv].weight) in this '
                         f'checkpoint ({len(out)} tensors converted); keys found: '
                         f'{shown or "none"}')
    return out, report
