"""What a load put into a model, checked the same way for every entry point.

Reading (one reader for every entry point) lives in :mod:`mmattn.utils.checkpoint_io`
(re-exported here).

Checking (:class:`PretrainedLoadCheck`): mmengine's ``init_cfg=dict(type='Pretrained', ...)``
loads with ``strict=False``: keys the checkpoint lacks, and tensors whose shape differs, keep
their random initialisation and the only trace is a warning in a long log. For an attention
backbone that is the usual way a training run silently starts from a half-random network: a
checkpoint converted with the wrong prefix, an official checkpoint with renamed operator keys,
position tables built for another size. The mixin (in ``AttnResNet``/``AttnResNeXt``/
``AttnResNeSt`` and ``MRLAResNet``) watches its own ``load_state_dict`` while a Pretrained init
runs and then:

- always logs one report: how many tensors were loaded, the keys missing from the checkpoint,
  the checkpoint keys the backbone does not have (unexpected), and the tensors whose shapes
  differ (both shapes);
- raises :class:`UninitialisedWeightsError` when an **attention-operator** tensor (tensors of
  every module :func:`mmattn.models.layers.base.is_operator` recognises, plus MRLA's block-level
  ``mrla``/``bn_mrla``) stayed uninitialised (missing or another shape), when **any** tensor's
  shape differs, or when no tensor at all was loaded (a wrong ``prefix``), unless
  ``allow_uninitialised`` says so.

``allow_uninitialised``: ``False`` (default), ``True`` (report only), ``'operators'`` (the
"ImageNet ResNet init": a plain ResNet checkpoint whose convs load where they remain, while
every attention-operator tensor starts from its own init; everything else is still checked), or
a sequence of ``fnmatch`` patterns over the backbone's state-dict keys (``'*.rel_height'``,
``'layer4.*.conv2.bn_similarity.*'``), for weights that start fresh on purpose, e.g. the LESA
detection configs, which initialise from a classification checkpoint whose position encoding and
logit norms have other shapes ("we initialize new position embedding layers")::

    backbone=dict(type='AttnResNet', ...,
                  init_cfg=dict(type='Pretrained',
                                checkpoint='checkpoints/lesa-r50_in1k_mmattn.pth'),
                  allow_uninitialised=('*.rel_height', '*.rel_width', '*.bn_similarity.*',
                                       '*.bn_output.*'))

A pattern that matches no key of the backbone is an error (a typo would otherwise allow nothing).
Missing tensors outside the attention operators (e.g. DCN offsets, which start at zero by design)
are reported, not refused.
"""
import fnmatch
import logging
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from .checkpoint_io import (TRUST_ENV, CheckpointReadError, _first_line,  # noqa: F401
                            read_checkpoint, register_loaders, state_dict_of)

__all__ = [
    'CheckpointReadError', 'PretrainedLoadCheck', 'UninitialisedWeightsError', 'OPERATORS',
    'attention_state_keys', 'check_allow_uninitialised', 'compare_with_checkpoint',
    'format_list', 'format_report', 'read_checkpoint', 'register_loaders', 'state_shapes',
    'suggest_patterns'
]

# MRLA's modules sit in the block under their official names (``layer1.0.mrla``,
# ``layer1.0.bn_mrla``) and are not 3x3-conv replacements, so is_operator() does not see them.
ATTENTION_MODULE_NAMES = ('mrla', 'bn_mrla')
#: ``allow_uninitialised`` preset: every attention-operator tensor may start fresh.
OPERATORS = 'operators'
MODEL_ZOO = "README.md, 'Model zoo'"
_LIST_LIMIT = 30


# ----------------------------------------------------------------------------------------------
# comparing
# ----------------------------------------------------------------------------------------------
class UninitialisedWeightsError(RuntimeError):
    """A Pretrained init left weights at their random values without being allowed to."""


def check_allow_uninitialised(value, owner: str = 'backbone'):
    """``False`` | ``True`` | ``'operators'`` | tuple of non-empty pattern strings."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if value == OPERATORS:
        return OPERATORS
    if isinstance(value, str):
        value = (value, )
    if (isinstance(value, Sequence) and value
            and all(isinstance(p, str) and p for p in value)):
        return tuple(value)
    raise TypeError(f'{owner}: allow_uninitialised={value!r}; accepted: False, True, '
                    f"{OPERATORS!r} (ImageNet ResNet init: operators start fresh), or a sequence "
                    "of fnmatch patterns over state-dict keys (e.g. ('*.rel_height', "
                    "'*.rel_width'))")


def state_shapes(module_or_state) -> Dict[str, tuple]:
    """``{key: shape}`` of a module's state dict (or of a state dict), without the BatchNorm
    ``num_batches_tracked`` counters."""
    state = (module_or_state.state_dict() if hasattr(module_or_state, 'state_dict')
             else module_or_state)
    return {k: tuple(v.shape) for k, v in state.items()
            if hasattr(v, 'shape') and not k.endswith('num_batches_tracked')}


def _is_operator_module(name: str, module) -> bool:
    from mmattn.models.layers.base import is_operator
    return is_operator(module) or name.rsplit('.', 1)[-1] in ATTENTION_MODULE_NAMES


def attention_state_keys(module) -> List[str]:
    """State-dict keys (parameters and persistent buffers) of the attention operators in
    ``module``: every outermost submodule that is an operator of the contract, and MRLA's
    block modules (``ATTENTION_MODULE_NAMES``)."""
    prefixes = []
    for name, sub in module.named_modules():
        if not name or any(name.startswith(p) for p in prefixes):
            continue  # the root, or inside an operator already counted
        if _is_operator_module(name, sub):
            prefixes.append(name + '.')
    return sorted(k for k in state_shapes(module) if any(k.startswith(p) for p in prefixes))


def compare_with_checkpoint(model_shapes: Dict[str, tuple], source_shapes: Dict[str, tuple],
                            prefix: str = '') -> dict:
    """``loaded``, ``missing``, ``unexpected`` (keys without ``prefix``) and ``mismatched``
    (``(key, checkpoint shape, model shape)``) of a load of ``source_shapes`` into a model."""
    src = {k[len(prefix):]: tuple(s) for k, s in source_shapes.items() if k.startswith(prefix)}
    src = {k: s for k, s in src.items() if not k.endswith('num_batches_tracked')}
    missing = sorted(k for k in model_shapes if k not in src)
    mismatched = sorted((k, src[k], tuple(s)) for k, s in model_shapes.items()
                        if k in src and src[k] != tuple(s))
    unexpected = sorted(k for k in src if k not in model_shapes)
    loaded = len(model_shapes) - len(missing) - len(mismatched)
    return dict(loaded=loaded, total=len(model_shapes), missing=missing, mismatched=mismatched,
                unexpected=unexpected)


def _matches(key: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def suggest_patterns(keys: Sequence[str]) -> Tuple[str, ...]:
    """Short ``fnmatch`` patterns covering ``keys`` (``layer3.1.conv2.bn_similarity.weight`` ->
    ``'*.bn_similarity.*'``, ``layer3.1.conv2.rel_height`` -> ``'*.rel_height'``)."""
    generic = ('weight', 'bias', 'running_mean', 'running_var')
    out = []
    for key in keys:
        parts = key.split('.')
        if parts[-1] in generic and len(parts) > 1:
            owner = parts[:-1]
            tail = owner[-2:] if owner[-1].isdigit() and len(owner) > 1 else owner[-1:]
            pat = ('*.' if len(owner) > len(tail) else '') + '.'.join(tail) + '.*'
        else:
            pat = ('*.' if len(parts) > 1 else '') + parts[-1]
        if pat not in out:
            out.append(pat)
    return tuple(out)


def format_list(items, fmt=str) -> str:
    """``'N: a, b, ... and M more'`` (at most 30 shown)."""
    items = list(items)
    shown = ', '.join(fmt(x) for x in items[:_LIST_LIMIT])
    more = f' ... and {len(items) - _LIST_LIMIT} more' if len(items) > _LIST_LIMIT else ''
    return f'{len(items)}' + (f': {shown}{more}' if items else '')


def format_mismatch(m) -> str:
    return f'{m[0]} (checkpoint {m[1]}, model {m[2]})'


def format_report(owner: str, source: str, report: dict) -> str:
    text = (f'{owner}: loaded {report["loaded"]}/{report["total"]} tensors from {source}; '
            f'missing from the checkpoint {format_list(report["missing"])}; '
            f'unexpected (in the checkpoint, not in the model) '
            f'{format_list(report["unexpected"])}; shape mismatch '
            f'{format_list(report["mismatched"], format_mismatch)}')
    if report.get('fresh'):
        text += (f'; attention-operator tensors starting from their own init '
                 f'{format_list(report["fresh"])}')
    return text


def _allowed(key: str, allow, attention: set) -> bool:
    if allow is True:
        return True
    if allow == OPERATORS:
        return key in attention
    return bool(allow) and _matches(key, allow)


def fresh_tensors(report: dict, attention_keys: Sequence[str]) -> List[str]:
    """The attention-operator tensors a load left at their own init (missing or reshaped)."""
    attention = set(attention_keys)
    return sorted({k for k in report['missing'] if k in attention}
                  | {m[0] for m in report['mismatched'] if m[0] in attention})


def refusal(owner: str, source: str, report: dict, attention_keys: Sequence[str],
            allow, what: Optional[str] = None) -> Optional[str]:
    """The error message for what ``allow`` does not cover, or None. ``what`` names the load
    (default: the Pretrained init from ``source``)."""
    if allow is True:
        return None
    attention = set(attention_keys)
    missing_attn = [k for k in report['missing']
                    if k in attention and not _allowed(k, allow, attention)]
    mismatched = [m for m in report['mismatched'] if not _allowed(m[0], allow, attention)]
    lines = []
    by_name = report['loaded'] + len(report['mismatched'])
    if report['loaded'] == 0 and report['total']:
        lines.append(f'no tensor of the checkpoint was loaded ({len(report["unexpected"])} '
                     'checkpoint keys match no key of the backbone' +
                     (f', {len(report["mismatched"])} match a key but not its shape'
                      if report['mismatched'] else '') + ')')
    if missing_attn:
        lines.append(f'attention-operator tensors missing from the checkpoint: '
                     f'{format_list(missing_attn)}')
    if mismatched:
        lines.append('tensors whose shape differs (left at their initial values): ' +
                     format_list(mismatched, format_mismatch))
    if not lines:
        return None
    hint = ''
    if by_name == 0 and what is None:  # no name matched: the keys carry a prefix
        firsts = sorted({k.split('.', 1)[0] + '.' for k in report['unexpected']})[:5]
        hint = (f' The checkpoint keys start with {firsts}: an mmpretrain/mmdet checkpoint '
                "needs init_cfg prefix='backbone.'.")
    bad = missing_attn + [m[0] for m in mismatched]
    if report['loaded'] == 0 and by_name:
        allow_hint = (' The names fit but no shape does: this checkpoint is of another '
                      'architecture (depth, width or stem) than the backbone.')
    elif bad and all(k in attention for k in bad) and report['loaded']:
        allow_hint = (f" If this is a plain ResNet checkpoint (ImageNet ResNet init: the convs "
                      f"that remain load, the operators start from their own init), pass "
                      f"allow_uninitialised={OPERATORS!r} to the backbone; if only these "
                      f"weights are meant to start fresh, allow_uninitialised="
                      f"{suggest_patterns(bad)!r} (or True to only report).")
    elif bad:
        allow_hint = (f' If these weights are meant to start fresh, pass allow_uninitialised='
                      f'{suggest_patterns(bad)!r} to the backbone (or True to only report).')
    else:
        allow_hint = ' Pass allow_uninitialised=True to the backbone to only report.'
    what = what or f'Pretrained init from {source}'
    return (f'{owner}: {what} left weights uninitialised: ' +
            '; '.join(lines) + '.' + hint + allow_hint)


def _key_starts(checkpoint) -> list:
    """The first components of a checkpoint's keys (for error messages)."""
    try:
        from mmengine.runner.checkpoint import _load_checkpoint
        sd = state_dict_of(_load_checkpoint(checkpoint, map_location='cpu')) or {}
        return sorted({k.split('.', 1)[0] + '.' for k in sd})[:8]
    except Exception as e:  # only for the message
        return [f'(unreadable: {_first_line(e)})']


class PretrainedLoadCheck:
    """Mixin for a BaseModule backbone: report every Pretrained load, refuse silent gaps.

    Adds the keyword argument ``allow_uninitialised`` (see the module docstring). After a
    Pretrained init, ``self.load_report`` holds the comparison (with ``fresh``: the operator
    tensors left at their own init)."""

    allow_uninitialised = False
    load_report = None
    #: set by ``check_checkpoint_fits(..., allow_partial=True)`` (``--allow-partial-checkpoint``)
    partial_load_allowed = False

    def __init__(self, *args, allow_uninitialised=False, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_allow_uninitialised(allow_uninitialised)

    def _set_allow_uninitialised(self, value) -> None:
        self.allow_uninitialised = check_allow_uninitialised(value, type(self).__name__)

    def _pretrained_cfgs(self) -> list:
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        return [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']

    def _check_allow_patterns(self) -> None:
        allow = self.allow_uninitialised
        if isinstance(allow, tuple):
            keys = list(state_shapes(self))
            unused = [p for p in allow if not any(fnmatch.fnmatchcase(k, p) for k in keys)]
            if unused:
                raise ValueError(f'{type(self).__name__}: allow_uninitialised patterns {unused} '
                                 f'match no state-dict key of the backbone (keys look like '
                                 f'{keys[len(keys) // 2]!r})')

    def init_weights(self):
        pretrained = self._pretrained_cfgs()
        if not pretrained or getattr(self, '_is_init', False):
            return super().init_weights()
        self._check_allow_patterns()
        records = []

        def record(module, state_dict, prefix, *args):
            records.append((prefix, {k: tuple(v.shape) for k, v in state_dict.items()
                                     if k.startswith(prefix) and hasattr(v, 'shape')}))

        owner = type(self).__name__
        cfg = pretrained[-1]
        source = repr(cfg.get('checkpoint'))
        if cfg.get('prefix'):
            source += f" (prefix {cfg['prefix']!r})"
        handle = self.register_load_state_dict_pre_hook(record)
        self._in_pretrained_init = True
        try:
            super().init_weights()
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'{owner} init_cfg.checkpoint={cfg.get("checkpoint")!r}: {e}. Which weights '
                f'exist and how to make the ImageNet checkpoints: {MODEL_ZOO}; to train from '
                'scratch set the backbone init_cfg=None') from None
        except AssertionError as e:
            # mmengine: `assert state_dict, f'{prefix} is not in the pretrained model'`
            if 'is not in the pretrained model' not in str(e):
                raise
            raise UninitialisedWeightsError(
                f'{owner}: Pretrained init from {source}: no checkpoint key starts with '
                f"prefix={cfg.get('prefix')!r}; the checkpoint's keys start with "
                f"{_key_starts(cfg.get('checkpoint'))}. Set init_cfg prefix to one of them, "
                'or leave it out for a checkpoint of bare backbone keys.') from e
        finally:
            handle.remove()
            self._in_pretrained_init = False
        if not records:
            return
        prefix, shapes = records[-1]
        report = compare_with_checkpoint(state_shapes(self), shapes, prefix)
        attention = attention_state_keys(self)
        report['fresh'] = fresh_tensors(report, attention)
        self.load_report = report
        print_log(format_report(owner, source, report), logger='current', level=logging.INFO)
        message = refusal(owner, source, report, attention, self.allow_uninitialised)
        if message:
            raise UninitialisedWeightsError(message)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A checkpoint of a whole model (``load_from``, ``tools/test.py``, ``mim test``,
        ``DetInferencer``, ``--resume``) passes through here with ``prefix='backbone.'``: the
        backbone's part is held to the Pretrained rules, so another model's checkpoint stops
        with the tensors named instead of size-mismatch warnings."""
        if prefix and not (getattr(self, '_in_pretrained_init', False)
                           or self.partial_load_allowed):
            report = compare_with_checkpoint(
                state_shapes(self), {k: tuple(v.shape) for k, v in state_dict.items()
                                     if k.startswith(prefix) and hasattr(v, 'shape')}, prefix)
            message = refusal(type(self).__name__, '', report, attention_state_keys(self),
                              self.allow_uninitialised,
                              what=f'loading a checkpoint into the model (backbone keys '
                              f'{prefix}*)')
            if message:
                raise UninitialisedWeightsError(message)
        return super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
