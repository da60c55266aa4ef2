"""Official EANet checkpoints (github.com/MenghaoGuo/EANet, ``model_torch.py``) -> the keys of
an mmseg ``EncoderDecoder`` with ``ResNetV1c`` and :class:`~mmattn.models.heads.EAHead`.

The official training saves ``{'net': state_dict, 'step': N}`` (the released Pascal VOC model:
dilated ResNet-101, 21 classes). The network is ``extractor`` (an ``nn.Sequential`` of the
ResNet's stem and stages), ``fc0`` (ConvBNReLU 2048 -> 512), ``linu`` (the external-attention
unit), ``fc1`` (ConvBNReLU 512 -> 256 + Dropout2d) and ``fc2`` (the 1x1 classifier). What
changes:

* ``extractor.0.{0,1,3,4,6}`` (deep stem, 3->64->64->128) -> ``backbone.stem.{0,1,3,4,6}``,
  ``extractor.1`` (the stem's last BN) -> ``backbone.stem.7``; ``extractor.{4,5,6,7}`` ->
  ``backbone.layer{1,2,3,4}`` (block keys unchanged: torchvision names);
* ``fc0.conv/bn`` -> ``decode_head.conv_in.conv/bn``; ``fc1.0.conv/bn`` ->
  ``decode_head.conv_out.conv/bn``; ``fc2`` -> ``decode_head.conv_seg``;
* ``linu.conv1`` -> ``decode_head.ea.conv_in``, ``linu.linear_0``/``linear_1`` (the memories
  M_k, M_v) -> ``decode_head.ea.ea.mk``/``mv``, ``linu.conv2.0``/``conv2.1`` ->
  ``decode_head.ea.conv_out``/``decode_head.ea.bn``.

``target='backbone'`` keeps only the backbone keys, without ``backbone.`` (the config's
backbone ``init_cfg`` loads them). A DataParallel ``module.`` prefix is dropped. The model these
keys fit is ``configs/external_attention/eanet-official_r101-d8_4xb4-80k_ade20k-512x512.py``
(official stem width 128, ``align_corners=True``, no auxiliary head), with
``model.decode_head.num_classes=21`` for the whole released VOC network.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Tuple

__all__ = ['convert_eanet', 'TARGETS']

TARGETS = ('segmentor', 'backbone')

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_RULES = [
    (re.compile(r'^extractor\.0\.([01346])\.(.+)$'), r'backbone.stem.\1.\2'),
    (re.compile(r'^extractor\.1\.' + _BN + '$'), r'backbone.stem.7.\1'),
    (re.compile(r'^extractor\.([4-7])\.(\d+\.(conv[123]\.weight|bn[123]\.' + _BN +
                r'|downsample\.0\.weight|downsample\.1\.' + _BN + r'))$'),
     lambda m: f'backbone.layer{int(m.group(1)) - 3}.{m.group(2)}'),
    (re.compile(r'^fc0\.conv\.weight$'), 'decode_head.conv_in.conv.weight'),
    (re.compile(r'^fc0\.bn\.' + _BN + '$'), r'decode_head.conv_in.bn.\1'),
    (re.compile(r'^linu\.conv1\.(weight|bias)$'), r'decode_head.ea.conv_in.\1'),
    (re.compile(r'^linu\.linear_0\.weight$'), 'decode_head.ea.ea.mk.weight'),
    (re.compile(r'^linu\.linear_1\.weight$'), 'decode_head.ea.ea.mv.weight'),
    (re.compile(r'^linu\.conv2\.0\.weight$'), 'decode_head.ea.conv_out.weight'),
    (re.compile(r'^linu\.conv2\.1\.' + _BN + '$'), r'decode_head.ea.bn.\1'),
    (re.compile(r'^fc1\.0\.conv\.weight$'), 'decode_head.conv_out.conv.weight'),
    (re.compile(r'^fc1\.0\.bn\.' + _BN + '$'), r'decode_head.conv_out.bn.\1'),
    (re.compile(r'^fc2\.(weight|bias)$'), r'decode_head.conv_seg.\1'),
]


def _unwrap(checkpoint: Mapping) -> Tuple[Mapping, dict]:
    meta = {k: checkpoint[k] for k in ('step', ) if k in checkpoint}
    for name in ('net', 'state_dict', 'model'):
        if name in checkpoint and isinstance(checkpoint[name], Mapping):
            return checkpoint[name], meta
    return checkpoint, meta


def convert_eanet(checkpoint: Mapping, target: str = 'segmentor',
                  require_ea: bool = False) -> Tuple[Dict, dict]:
    """Convert an official EANet checkpoint (or its state dict) to mmseg/mmattn keys.

    Returns ``(state_dict, report)``; the report holds ``unplaced`` (source keys left out,
    sorted), ``num_converted``, ``num_classes`` (rows of the classifier, or None) and ``meta``.
    ``require_ea``: a ValueError naming the keys found when no external-attention tensor
    converts (not an EANet checkpoint); the command-line converter sets it.
    """
    if target not in TARGETS:
        raise ValueError(f'convert_eanet: target={target!r} is not one of {TARGETS}')
    state_dict, meta = _unwrap(checkpoint)
    out, unplaced = OrderedDict(), []
    for src_key, value in state_dict.items():
        key = src_key[len('module.'):] if src_key.startswith('module.') else src_key
        new_key = None
        for pattern, repl in _RULES:
            if pattern.match(key):
                new_key = pattern.sub(repl, key)
                break
        if new_key is not None and target == 'backbone':
            new_key = new_key[len('backbone.'):] if new_key.startswith('backbone.') else None
        if new_key is None:
            unplaced.append(src_key)
            continue
        out[new_key] = value
    classifier = state_dict.get('fc2.weight', state_dict.get('module.fc2.weight'))
    report = dict(unplaced=sorted(unplaced), num_converted=len(out), meta=meta,
                  num_classes=int(classifier.shape[0]) if classifier is not None else None)
    if require_ea and not any(k.endswith(('linear_0.weight', 'linear_1.weight'))
                              for k in state_dict):
        found = list(state_dict)
        shown = ', '.join(found[:5]) + (f', ... ({len(found)} keys)' if len(found) > 5 else '')
        raise ValueError('convert_eanet: no external-attention tensor (linu.linear_0/1.weight) '
                         f'in this checkpoint; keys found: {shown or "none"}')
    return out, report
