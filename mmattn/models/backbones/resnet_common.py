"""What every mmattn ResNet-family backbone (AttnResNet/ResNeXt/ResNeSt, MRLAResNet) shares on
top of mmseg's ResNet: argument checks with messages, the zero-init of blocks mmseg does not
recognise, ``train()`` returning ``self``, and the Pretrained-load check."""
import difflib
import inspect
from typing import Sequence

from .checkpoint_check import PretrainedLoadCheck


def check_resnet_args(name, kwargs):
    """The stage-tuple arguments of mmseg's ResNet, checked with messages (mmseg asserts
    without one, or fails with an IndexError deep inside the constructor)."""
    num_stages = kwargs.get('num_stages', 4)
    if not (isinstance(num_stages, int) and 1 <= num_stages <= 4):
        raise ValueError(f'{name}: num_stages={num_stages!r}; accepted an int in [1, 4]')
    for key, default in (('strides', (1, 2, 2, 2)), ('dilations', (1, 1, 1, 1))):
        value = kwargs.get(key, default)
        if not isinstance(value, Sequence) or len(value) != num_stages:
            raise ValueError(f'{name}: {key}={value!r}; accepted one int per stage '
                             f'(num_stages={num_stages})')
    out_indices = kwargs.get('out_indices', (0, 1, 2, 3))
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    if not (isinstance(out_indices, Sequence) and out_indices
            and all(isinstance(i, int) and 0 <= i < num_stages for i in out_indices)):
        raise ValueError(f'{name}: out_indices={kwargs.get("out_indices")!r}; accepted stage '
                         f'indices in [0, {num_stages - 1}]')
    with_dcn = kwargs.get('stage_with_dcn', (False, False, False, False))
    if kwargs.get('dcn') is not None and (not isinstance(with_dcn, Sequence)
                                          or len(with_dcn) != num_stages):
        raise ValueError(f'{name}: stage_with_dcn={with_dcn!r}; accepted one bool per stage '
                         f'(num_stages={num_stages}) when dcn is set')
    if not isinstance(with_dcn, Sequence) or len(with_dcn) < num_stages:
        raise ValueError(f'{name}: stage_with_dcn={with_dcn!r}; accepted one bool per stage '
                         f'(num_stages={num_stages})')
    for i, plugin in enumerate(kwargs.get('plugins') or ()):
        stages = plugin.get('stages') if isinstance(plugin, dict) else None
        if stages is not None and (not isinstance(stages, Sequence)
                                   or len(stages) != num_stages):
            raise ValueError(f'{name}: plugins[{i}].stages={stages!r}; accepted one bool per '
                             f'stage (num_stages={num_stages})')
    frozen = kwargs.get('frozen_stages', -1)
    if not (isinstance(frozen, int) and not isinstance(frozen, bool)
            and -1 <= frozen <= num_stages):
        raise ValueError(f'{name}: frozen_stages={frozen!r} must be an int in [-1, '
                         f'num_stages={num_stages}]; accepted -1 (nothing frozen), 0 (the stem) '
                         f'up to {num_stages} (all stages)')


def accepted_arguments(cls) -> set:
    """Keyword names the constructors along ``cls``'s MRO take (``**kwargs`` passes on)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None or klass is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != 'self':
                names.add(p.name)
    return names


class ResNetCommon(PretrainedLoadCheck):
    """Mixin placed before mmseg's ``ResNet`` (or a subclass) in the bases."""

    def _check_common_args(self, depth, kwargs):
        name = type(self).__name__
        unknown = sorted(set(kwargs) - accepted_arguments(type(self)))
        if unknown:
            accepted = sorted(accepted_arguments(type(self)) - {'args', 'kwargs'})
            hints = {u: difflib.get_close_matches(u, accepted, 1) for u in unknown}
            hint = '; '.join(f'{u!r}: did you mean {h[0]!r}?' for u, h in hints.items() if h)
            raise TypeError(f'{name}: unknown argument(s) {", ".join(map(repr, unknown))}'
                            f'{" (" + hint + ")" if hint else ""}; accepted: '
                            f'{", ".join(accepted)}')
        depths = tuple(sorted(self._depth_table()))
        if depth not in depths:
            raise ValueError(f'{name}: depth={depth!r} is not one of {depths}')
        check_resnet_args(name, kwargs)

    def _depth_table(self) -> dict:
        for klass in type(self).__mro__:
            table = klass.__dict__.get('arch_settings')
            if isinstance(table, dict):
                return table
        raise TypeError(f'{type(self).__name__} has no arch_settings table')

    def _zero_init_blocks(self, kwargs, block_types):
        """mmseg zero-inits the last norm only in its own ``BasicBlock``/``Bottleneck``
        (``block is Bottleneck``); do it for ``block_types`` (our subclasses) too, unless the
        weights come from ``init_cfg``/``pretrained``."""
        if not self.zero_init_residual or kwargs.get('init_cfg') or kwargs.get('pretrained'):
            return
        for layer_name in self.res_layers:
            for block in getattr(self, layer_name):
                if type(block) in block_types and block.init_cfg is None:
                    block.init_cfg = dict(type='Constant', val=0, override=dict(name='norm3'))

    def train(self, mode: bool = True):
        # mmseg's ResNet.train returns None, which breaks `model = AttnResNet(...).eval()`
        super().train(mode)
        return self
