"""What a Pretrained init loaded, and a loud failure when it leaves attention weights untouched.

mmengine's ``init_cfg=dict(type='Pretrained', ...)`` loads with ``strict=False``: keys the
checkpoint lacks, and tensors whose shape differs, keep their random initialisation and the only
trace is a warning in a long log. For an attention backbone that is the usual way a training run
silently starts from a half-random network: a checkpoint converted with the wrong prefix, an
official checkpoint with renamed operator keys, position tables built for another size.

:class:`PretrainedLoadCheck` (mixed into ``AttnResNet``/``AttnResNeXt``/``AttnResNeSt`` and
``MRLAResNet``) watches its own ``load_state_dict`` while a Pretrained init runs and then:

- always logs one report: how many tensors were loaded, the keys missing from the checkpoint,
  the checkpoint keys the backbone does not have (unexpected), and the tensors whose shapes
  differ (both shapes);
- raises :class:`UninitialisedWeightsError` when an **attention-operator** tensor (parameters
  and buffers of any module from ``mmattn.models.layers``, plus MRLA's ``bn_mrla``) stayed
  uninitialised (missing or another shape), when **any** tensor's shape differs, or when no
  tensor at all was loaded (a wrong ``prefix``), unless ``allow_uninitialised`` says so.

``allow_uninitialised``: ``False`` (default), ``True`` (report only), or a sequence of
``fnmatch`` patterns over the backbone's state-dict keys (``'*.rel_height'``,
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

__all__ = ['PretrainedLoadCheck', 'UninitialisedWeightsError', 'attention_state_keys',
           'compare_with_checkpoint', 'check_allow_uninitialised', 'suggest_patterns']

# Modules that belong to an attention operator although the block builds them (MRLA's norm).
ATTENTION_MODULE_NAMES = ('bn_mrla', )
_LAYERS_PACKAGE = 'mmattn.models.layers'
_LIST_LIMIT = 30


class UninitialisedWeightsError(RuntimeError):
    """A Pretrained init left weights at their random values without being allowed to."""


def check_allow_uninitialised(value, owner: str = 'backbone'):
    """``False`` | ``True`` | tuple of non-empty pattern strings."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str):
        value = (value, )
    if (isinstance(value, Sequence) and value
            and all(isinstance(p, str) and p for p in value)):
        return tuple(value)
    raise TypeError(f'{owner}: allow_uninitialised={value!r}; accepted: False, True, or a '
                    "sequence of fnmatch patterns over state-dict keys (e.g. ('*.rel_height', "
                    "'*.rel_width'))")


def _state_keys(module) -> Dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()
            if not k.endswith('num_batches_tracked')}


def attention_state_keys(module) -> List[str]:
    """State-dict keys (parameters and persistent buffers) of the attention operators in
    ``module``: every submodule whose class lives in ``mmattn.models.layers`` (the outermost
    one), and the modules named in ``ATTENTION_MODULE_NAMES``."""
    prefixes = []
    for name, sub in module.named_modules():
        if not name:
            continue
        if any(name.startswith(p) for p in prefixes):
            continue  # inside an operator already counted
        if (type(sub).__module__.startswith(_LAYERS_PACKAGE)
                or name.rsplit('.', 1)[-1] in ATTENTION_MODULE_NAMES):
            prefixes.append(name + '.')
    return sorted(k for k in _state_keys(module) if any(k.startswith(p) for p in prefixes))


def compare_with_checkpoint(model_shapes: Dict[str, tuple], source_shapes: Dict[str, tuple],
                            prefix: str = '') -> dict:
    """``loaded``, ``missing``, ``unexpected`` (keys without ``prefix``) and ``mismatched``
    (``(key, checkpoint shape, model shape)``) of a load of ``source_shapes`` into a model."""
    src = {k[len(prefix):]: s for k, s in source_shapes.items() if k.startswith(prefix)}
    src = {k: s for k, s in src.items() if not k.endswith('num_batches_tracked')}
    missing = sorted(k for k in model_shapes if k not in src)
    mismatched = sorted((k, src[k], s) for k, s in model_shapes.items()
                        if k in src and tuple(src[k]) != tuple(s))
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


def _fmt_list(items, fmt=str) -> str:
    items = list(items)
    shown = ', '.join(fmt(x) for x in items[:_LIST_LIMIT])
    more = f' ... and {len(items) - _LIST_LIMIT} more' if len(items) > _LIST_LIMIT else ''
    return f'{len(items)}' + (f': {shown}{more}' if items else '')


def _fmt_mismatch(m) -> str:
    return f'{m[0]} (checkpoint {m[1]}, model {m[2]})'


def format_report(owner: str, source: str, report: dict) -> str:
    return (f'{owner}: loaded {report["loaded"]}/{report["total"]} tensors from {source}; '
            f'missing from the checkpoint {_fmt_list(report["missing"])}; '
            f'unexpected (in the checkpoint, not in the model) '
            f'{_fmt_list(report["unexpected"])}; shape mismatch '
            f'{_fmt_list(report["mismatched"], _fmt_mismatch)}')


def refusal(owner: str, source: str, report: dict, attention_keys: Sequence[str],
            allow) -> Optional[str]:
    """The error message for what ``allow`` does not cover, or None."""
    if allow is True:
        return None
    patterns = () if allow is False else allow
    attention = set(attention_keys)
    missing_attn = [k for k in report['missing'] if k in attention and not _matches(k, patterns)]
    mismatched = [m for m in report['mismatched'] if not _matches(m[0], patterns)]
    lines = []
    if report['loaded'] == 0 and report['total']:
        lines.append(f'no tensor of the checkpoint was loaded ({len(report["unexpected"])} '
                     'checkpoint keys match no key of the backbone)')
    if missing_attn:
        lines.append(f'attention-operator tensors missing from the checkpoint: '
                     f'{_fmt_list(missing_attn)}')
    if mismatched:
        lines.append('tensors whose shape differs (left at their initial values): ' +
                     _fmt_list(mismatched, _fmt_mismatch))
    if not lines:
        return None
    hint = ''
    if report['loaded'] == 0:
        firsts = sorted({k.split('.', 1)[0] + '.' for k in report['unexpected']})[:5]
        hint = (f' The checkpoint keys start with {firsts}: an mmpretrain/mmdet checkpoint '
                "needs init_cfg prefix='backbone.'.")
    bad = missing_attn + [m[0] for m in mismatched]
    suggestion = suggest_patterns(bad) if bad else ()
    allow_hint = (f' If these weights are meant to start fresh, pass '
                  f'allow_uninitialised={suggestion!r} to the backbone (or True to only report).'
                  if suggestion else
                  ' Pass allow_uninitialised=True to the backbone to only report.')
    return (f'{owner}: Pretrained init from {source} left weights uninitialised: ' +
            '; '.join(lines) + '.' + hint + allow_hint)


def _key_starts(checkpoint) -> list:
    """The first components of a checkpoint's keys (for error messages)."""
    try:
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint(checkpoint, map_location='cpu')
        sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
        return sorted({k.split('.', 1)[0] + '.' for k in sd})[:8]
    except Exception as e:  # only for the message
        return [f'(unreadable: {e})']


class PretrainedLoadCheck:
    """Mixin for a BaseModule backbone: report every Pretrained load, refuse silent gaps.

    Adds the keyword argument ``allow_uninitialised`` (see the module docstring)."""

    allow_uninitialised = False

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
            keys = list(_state_keys(self))
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
        try:
            super().init_weights()
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
        if not records:
            return
        prefix, shapes = records[-1]
        report = compare_with_checkpoint(_state_keys(self), shapes, prefix)
        print_log(format_report(owner, source, report), logger='current', level=logging.INFO)
        message = refusal(owner, source, report, attention_state_keys(self),
                          self.allow_uninitialised)
        if message:
            raise UninitialisedWeightsError(message)
