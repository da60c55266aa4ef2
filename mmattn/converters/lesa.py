"""Official LESA checkpoints -> mmattn keys (``AttnResNet`` with ``LESA`` in ``conv2``).

Two official formats (``Chenglin-Yang/LESA_classification`` and ``LESA_detection``):

* classification: ``{'net': state_dict, 'epoch': ...}``, DataParallel's ``module.`` prefix,
  torchvision names (``conv1``, ``bn1``, ``layerN.i.conv2.qkv_transform.weight``, ``fc.*``);
* detection (mmdet 2.11 fork): ``{'state_dict', 'meta', 'optimizer'}`` with ``backbone.*``,
  ``neck.*``, ``rpn_head.*``, ``roi_head.*`` (and HTC's ``roi_head.semantic_head.*``).

Our LESA keeps the official submodule names and shapes (``qkv_transform`` stays a Conv1d) and
``AttnResNet`` keeps torchvision's block names, so a backbone key maps 1:1 once ``module.`` /
``backbone.`` is handled. The mmdet 2.x -> 3.x key layout of Mask R-CNN / HTC heads, FPN and
DCN (``conv_offset``) is unchanged, so detector keys are kept as they are (``_DET_RENAMES``
holds the renames, none needed for these models).

What the targets write:

* ``'backbone'``: ``AttnResNet`` keys (for ``backbone.init_cfg=dict(type='Pretrained')``);
  ``fc.*`` and every non-backbone detector key are unplaced;
* ``'classifier'``: an mmpretrain ``ImageClassifier`` (``backbone.*`` + ``head.fc.*``), from
  a classification checkpoint only;
* ``'detector'``: the whole mmdet model (``backbone.*``, ``neck.*``, heads), from a detection
  checkpoint only (for ``load_from``).

``drop_position=True`` leaves out the classification position encoding (``relative`` and the
``bn_similarity``/``bn_output`` norms whose shapes depend on it: 3 and 2 terms instead of 2
and 1) so a classification checkpoint can start a detection backbone, whose position layers
start fresh as in the paper ("we initialize new position embedding layers"). Those keys are
listed in ``report['dropped_position']``.

Keys matching nothing known are never written silently: they are listed in
``report['unplaced']``. A checkpoint with no LESA tensor at all (an MRLA or torchvision
checkpoint, a random dict) raises ``ValueError``.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Tuple

__all__ = ['convert_lesa', 'TARGETS']

TARGETS = ('backbone', 'classifier', 'detector')

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_LESA_PARAM = (
    r'qkv_transform\.weight|bn_(qkv|similarity|output|x)\.' + _BN +
    r'|rel_height|rel_width|relative'
    r'|x_transform\.0\.weight|x_transform\.0\.conv_offset\.(weight|bias)|x_transform\.1\.weight'
    r'|reasoning\.1\.weight|reasoning\.2\.' + _BN +
    r'|projection\.0\.weight|projection\.1\.' + _BN)
# a block of torchvision's / mmdet's ResNet; conv2 is a conv, a DCN (conv_offset) or a LESA
_BLOCK_KEY = re.compile(
    r'^layer[1-4]\.\d+\.('
    r'conv[123]\.weight|conv2\.conv_offset\.(weight|bias)|bn[123]\.' + _BN +
    r'|downsample\.0\.weight|downsample\.1\.' + _BN +
    r'|conv2\.(' + _LESA_PARAM + r'))$')
_STEM_KEY = re.compile(r'^(conv1\.weight|bn1\.' + _BN + r')$')
_HEAD_KEY = re.compile(r'^fc\.(weight|bias)$')
_LESA_KEY = re.compile(r'\.conv2\.qkv_transform\.weight$')
_CLS_POSITION_KEY = re.compile(
    r'^(?P<block>layer[1-4]\.\d+\.conv2)\.(relative|bn_similarity\.' + _BN +
    r'|bn_output\.' + _BN + r')$')
_DET_PREFIXES = ('backbone.', 'neck.', 'rpn_head.', 'roi_head.', 'bbox_head.', 'mask_head.',
                 'semantic_head.')
# mmdet 2.x -> 3.x renames of Mask R-CNN / HTC keys: (pattern, replacement). The layouts are
# identical for these models; the table is here so a rename has one place to go.
_DET_RENAMES = ()


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def _unwrap(checkpoint: Mapping) -> Tuple[Mapping, dict]:
    """The state dict inside an official checkpoint (or the state dict itself) and metadata."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'convert_lesa: expected a checkpoint dict, got '
                         f'{type(checkpoint).__name__}')
    meta = {}
    if 'epoch' in checkpoint:
        meta['epoch'] = checkpoint['epoch']
    if isinstance(checkpoint.get('meta'), Mapping):
        for name in ('epoch', 'iter', 'mmdet_version', 'mmcv_version'):
            if name in checkpoint['meta']:
                meta[name] = checkpoint['meta'][name]
    for name in ('net', 'state_dict', 'model'):
        if isinstance(checkpoint.get(name), Mapping):
            return checkpoint[name], meta
    return checkpoint, meta


def _detect_format(keys) -> str:
    """'detection' when the keys are an mmdet model's, else 'classification'."""
    keys = [_strip(k, 'module.') for k in keys]
    return 'detection' if any(k.startswith('backbone.') for k in keys) else 'classification'


def convert_lesa(checkpoint: Mapping, target: str = 'backbone',
                 drop_position: bool = False) -> Tuple[Dict, dict]:
    """Convert an official LESA checkpoint or state dict to mmattn keys.

    Args:
        checkpoint: an official classification checkpoint (``{'net': ..., 'epoch': ...}``), an
            official mmdet 2.x detection checkpoint (``{'state_dict': ..., 'meta': ...}``), or
            a bare state dict of either.
        target: 'backbone', 'classifier' or 'detector' (see the module docstring).
        drop_position: leave out the classification position encoding (``relative``,
            ``bn_similarity``, ``bn_output`` of LESA blocks that have a ``relative`` table), to
            initialise a detection backbone from a classification checkpoint.

    Returns:
        ``(state_dict, report)``: the converted tensors (the same tensor objects) and a dict
        with ``format`` ('classification' | 'detection'), ``pe_type`` ('classification' |
        'detection_qr' | None), ``num_lesa`` (LESA blocks), ``unplaced`` (source keys left
        out, sorted), ``dropped_position`` (source keys left out by ``drop_position``),
        ``num_converted`` and ``meta`` (epoch, versions).

    Raises:
        ValueError: unknown target, a target the format cannot give (a classifier from a
            detector, a detector from a classifier), or no LESA tensor in the checkpoint.
    """
    if target not in TARGETS:
        raise ValueError(f'convert_lesa: target={target!r} is not one of {TARGETS}')
    state_dict, meta = _unwrap(checkpoint)
    bad = [k for k, v in state_dict.items() if not hasattr(v, 'shape')]
    if bad:
        raise ValueError(f'convert_lesa: not a state dict: {len(bad)} values are not tensors '
                         f'(e.g. {bad[0]!r})')
    fmt = _detect_format(state_dict)
    lesa_keys = [k for k in state_dict if _LESA_KEY.search(k)]
    if not lesa_keys:
        sample = ', '.join(repr(k) for k in list(state_dict)[:3]) or 'no keys'
        raise ValueError(
            f'convert_lesa: no LESA tensor (*.conv2.qkv_transform.weight) in this checkpoint '
            f'({len(state_dict)} keys: {sample}, ...): it is not an official LESA checkpoint '
            f'(MRLA: tools/model_converters/mrla_to_mmattn.py; a plain ResNet needs no '
            f'conversion)')
    if fmt == 'classification' and target == 'detector':
        raise ValueError("convert_lesa: a classification checkpoint has no detector: use "
                         "target='backbone' (with drop_position=True for a detection backbone)")
    if fmt == 'detection' and target == 'classifier':
        raise ValueError("convert_lesa: a detection checkpoint has no ImageNet classifier: use "
                         "target='backbone' or 'detector'")

    # LESA blocks with the classification encoding (their norms' shapes depend on it)
    cls_position_blocks = set()
    for k in state_dict:
        m = re.match(r'^(?P<block>.*conv2)\.relative$', _strip(_strip(k, 'module.'), 'backbone.'))
        if m:
            cls_position_blocks.add(m.group('block'))
    out = OrderedDict()
    unplaced, dropped = [], []
    for src_key, value in state_dict.items():
        key = _strip(src_key, 'module.')
        new_key = None
        if fmt == 'detection':
            for pattern, repl in _DET_RENAMES:
                key = re.sub(pattern, repl, key)
            if key.startswith('backbone.'):
                inner = key[len('backbone.'):]
                if _BLOCK_KEY.match(inner) or _STEM_KEY.match(inner):
                    new_key = inner if target == 'backbone' else key
            elif target == 'detector' and key.startswith(_DET_PREFIXES):
                new_key = key
        else:
            inner = key
            if _BLOCK_KEY.match(inner) or _STEM_KEY.match(inner):
                new_key = ('backbone.' if target == 'classifier' else '') + inner
            elif _HEAD_KEY.match(inner) and target == 'classifier':
                new_key = 'head.' + inner
        if new_key is not None and drop_position:
            inner = _strip(new_key, 'backbone.')
            m = _CLS_POSITION_KEY.match(inner)
            if m and m.group('block') in cls_position_blocks:
                dropped.append(src_key)
                continue
        if new_key is None:
            unplaced.append(src_key)
            continue
        if new_key in out:
            raise ValueError(f'convert_lesa: two source keys map to {new_key!r} '
                             f'(the second is {src_key!r})')
        out[new_key] = value

    if any(k.endswith('.relative') for k in state_dict):
        pe_type = 'classification'
    elif any(k.endswith('.rel_height') for k in state_dict):
        pe_type = 'detection_qr'
    else:
        pe_type = None
    report = dict(format=fmt, pe_type=pe_type, num_lesa=len(lesa_keys),
                  unplaced=sorted(unplaced), dropped_position=sorted(dropped),
                  num_converted=len(out), meta=meta)
    return out, report
