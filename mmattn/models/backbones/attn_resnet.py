"""ResNet-family backbones whose bottleneck 3x3 convs become attention operators, per stage.

One mechanism serves every paper whose operator is a drop-in for the 3x3 conv (LESA, SA,
AA, LA-layer): the base network is built exactly as mmseg builds it (a superset of mmdet's
ResNet: dcn, plugins, multi_grid, contract_dilation, frozen_stages, norm_eval, with_cp, init_cfg),
then the chosen ``conv2`` modules are swapped for the operator named in ``stage_ops``. The
operator keeps the name ``conv2`` so official torchvision-style checkpoints map key for key
(``layer3.1.conv2.qkv_transform.weight``).

A config says, in full, which convs changed::

    backbone=dict(
        type='AttnResNet', depth=50,
        stage_ops=(None, None, dict(type='LESA'), dict(type='LESA')),
        op_blocks=('all', 'all', 'all_but_first', 'all'))
"""
from typing import Sequence

import torch.nn as nn
from mmseg.models.backbones import ResNeSt, ResNet, ResNeXt

from mmattn.registry import MODELS
from .checkpoint_check import PretrainedLoadCheck

OP_BLOCK_CHOICES = ('all', 'all_but_first', 'first', 'none')


def _block_indices(spec, num_blocks, stage):
    if isinstance(spec, str):
        if spec not in OP_BLOCK_CHOICES:
            raise ValueError(f'op_blocks[{stage}]={spec!r}: accepted {OP_BLOCK_CHOICES} or a '
                             'list of block indices')
        return {
            'all': range(num_blocks),
            'all_but_first': range(1, num_blocks),
            'first': range(min(1, num_blocks)),
            'none': range(0),
        }[spec]
    idx = list(spec)
    bad = [i for i in idx if not (isinstance(i, int) and 0 <= i < num_blocks)]
    if bad:
        raise ValueError(f'op_blocks[{stage}]={spec!r}: block indices must be ints in '
                         f'[0, {num_blocks - 1}] (stage {stage + 1} has {num_blocks} blocks)')
    return idx


def _conv_args(conv):
    """Constructor arguments of the 3x3 conv (nn.Conv2d or mmcv DCN) being replaced."""
    def first(v):
        return v[0] if isinstance(v, (tuple, list)) else v
    return dict(in_channels=conv.in_channels, out_channels=conv.out_channels,
                kernel_size=first(conv.kernel_size), stride=first(conv.stride),
                padding=first(conv.padding), dilation=first(conv.dilation),
                groups=conv.groups, bias=getattr(conv, 'bias', None) is not None)


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


class AttnStagesMixin(PretrainedLoadCheck):
    """Swaps bottleneck ``conv2`` modules for the operators named per stage; checks what a
    Pretrained init loaded (:mod:`.checkpoint_check`)."""

    def _check_frozen_stages(self, frozen_stages, num_stages):
        if not (isinstance(frozen_stages, int) and -1 <= frozen_stages <= num_stages):
            raise ValueError(f'frozen_stages={frozen_stages!r}: accepted -1 (nothing frozen), '
                             f'0 (the stem) up to {num_stages} (all stages)')

    def _replace_convs(self, stage_ops, op_blocks):
        n = self.num_stages
        if stage_ops is None:
            stage_ops = (None, ) * n
        if not isinstance(stage_ops, Sequence) or len(stage_ops) != n:
            raise ValueError(f'stage_ops={stage_ops!r}: give one entry per stage '
                             f'(num_stages={n}), each an operator config dict or None')
        if isinstance(op_blocks, str):
            op_blocks = (op_blocks, ) * n
        if not isinstance(op_blocks, Sequence) or len(op_blocks) != n:
            raise ValueError(f'op_blocks={op_blocks!r}: give one entry per stage '
                             f'(num_stages={n}) from {OP_BLOCK_CHOICES} or block indices')
        self.stage_ops, self.op_blocks = tuple(stage_ops), tuple(op_blocks)
        self._nested_ops = []  # operators under a plain nn.Module (ResNeSt's split attention)
        for stage, (op_cfg, spec) in enumerate(zip(stage_ops, op_blocks)):
            if op_cfg is None:
                continue
            if not isinstance(op_cfg, dict) or 'type' not in op_cfg:
                raise ValueError(f'stage_ops[{stage}]={op_cfg!r}: must be a dict with a '
                                 "'type' key (e.g. dict(type='LESA')) or None")
            if op_cfg['type'] not in MODELS:
                raise ValueError(f"stage_ops[{stage}].type={op_cfg['type']!r} is not a "
                                 'registered operator; known attention operators: '
                                 f'{sorted(registered_operators())}')
            layer = getattr(self, self.res_layers[stage])
            for b in _block_indices(spec, len(layer), stage):
                block = layer[b]
                # ResNeSt: the 3x3 conv sits inside the split-attention conv (radix groups);
                # the split attention (norm0, fc1/fc2, rSoftMax) stays around the operator.
                owner = block.conv2 if hasattr(block.conv2, 'radix') else block
                conv = owner.conv if owner is not block else block.conv2
                if not hasattr(conv, 'in_channels'):
                    raise ValueError(
                        f'stage_ops[{stage}]: layer{stage + 1}[{b}].conv2 is a '
                        f'{type(conv).__name__}, not a 3x3 conv that an operator can replace')
                cfg = dict(op_cfg)
                cfg.update(_conv_args(conv))
                try:
                    op = MODELS.build(cfg)
                except (ValueError, TypeError) as e:
                    # name the stage and block: the operator only knows its own arguments
                    raise type(e)(f'stage_ops[{stage}] ({self.res_layers[stage]}[{b}].conv2, '
                                  f'{conv.in_channels} -> {conv.out_channels} channels, stride '
                                  f'{_conv_args(conv)["stride"]}): {e}') from e
                if owner is block:
                    block.conv2 = op
                else:
                    owner.conv = op
                    self._nested_ops.append(op)
                if (owner is block and getattr(op, 'norm_inside', False)
                        and hasattr(block, 'norm2_name')):
                    # The operator ends with its own norm (official LESA skips bn2).
                    setattr(block, block.norm2_name, nn.Identity())
        self._freeze_stages()


    def init_weights(self):
        """mmengine reaches an operator's own ``init_weights`` only through BaseModule parents;
        operators nested in ResNeSt's split-attention conv (an nn.Module) are called here, unless
        pretrained weights were just loaded."""
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs):
            return
        for op in getattr(self, '_nested_ops', []):
            if hasattr(op, 'init_weights'):
                op.init_weights()


def registered_operators():
    """Names of the registered modules that declare themselves 3x3-conv replacements."""
    return [name for name, cls in MODELS.module_dict.items()
            if hasattr(cls, 'norm_inside')]


def _make(base, name, doc):

    def __init__(self, *args, stage_ops=None, op_blocks='all', expansion=None,
                 allow_uninitialised=False, **kwargs):
        depth = kwargs.get('depth', args[0] if args else None)
        if depth not in base.arch_settings:
            raise ValueError(f'{name}: depth={depth!r}; accepted '
                             f'{sorted(base.arch_settings)}')
        if expansion is not None:
            block, stage_blocks = base.arch_settings[depth]
            if not (isinstance(expansion, int) and expansion >= 1):
                raise ValueError(f'{name}: expansion={expansion!r}; accepted a positive int '
                                 '(4 for ResNet; 2 with base_channels=128 for WRN-50-2)')
            if expansion != block.expansion:
                # Wide ResNets (WRN-50-2): bottleneck width x2, block output unchanged. The
                # instance attribute shadows the class table read by the base __init__.
                wide = type(f'{block.__name__}Exp{expansion}', (block, ),
                            {'expansion': expansion})
                self.__dict__['arch_settings'] = {depth: (wide, stage_blocks)}
        check_resnet_args(name, kwargs)
        num_stages = kwargs.get('num_stages', 4)
        self._check_frozen_stages(kwargs.get('frozen_stages', -1), num_stages)
        base.__init__(self, *args, **kwargs)
        self._set_allow_uninitialised(allow_uninitialised)
        if self.__dict__.get('arch_settings') and self.zero_init_residual and not (
                kwargs.get('init_cfg') or kwargs.get('pretrained')):
            # mmseg zero-inits norm3 only for its own Bottleneck class, not a subclass
            for layer_name in self.res_layers:
                for block in getattr(self, layer_name):
                    if block.init_cfg is None and hasattr(block, 'norm3_name'):
                        block.init_cfg = dict(type='Constant', val=0,
                                              override=dict(name='norm3'))
        self._replace_convs(stage_ops, op_blocks)

    cls = type(name, (AttnStagesMixin, base), {
        '__init__': __init__, '__doc__': doc, '__module__': __name__, '__qualname__': name})
    return MODELS.register_module(name=name, module=cls)


_ARGS_DOC = """

    Args (in addition to those of the base class):
        stage_ops (Sequence[dict | None]): per stage, the operator config that replaces the
            selected blocks' 3x3 ``conv2`` (its conv arguments are filled in from the conv), or
            None to keep the conv.
        op_blocks (str | Sequence): per stage (or one for all) which blocks: 'all',
            'all_but_first' (e.g. LESA keeps layer3[0]'s strided conv), 'first', 'none', or a
            list of block indices.
        expansion (int, optional): block output / bottleneck width. WRN-50-2 is
            ``base_channels=128, expansion=2`` (as mmpretrain's ResNet); default the block's.
        allow_uninitialised (bool | Sequence[str]): after a Pretrained init the backbone
            raises if an attention-operator tensor was not loaded or any tensor's shape
            differs; True only reports, a sequence of fnmatch patterns (``'*.rel_height'``)
            allows those keys. See :mod:`mmattn.models.backbones.checkpoint_check`.
"""
AttnResNet = _make(ResNet, 'AttnResNet',
                   'mmseg ResNet with per-stage attention operators.' + _ARGS_DOC)
AttnResNeXt = _make(ResNeXt, 'AttnResNeXt',
                    'mmseg ResNeXt with per-stage attention operators.' + _ARGS_DOC)
AttnResNeSt = _make(ResNeSt, 'AttnResNeSt',
                    'mmseg ResNeSt with per-stage attention operators (replaces the split '
                    "attention conv's inner conv, see la_layer)." + _ARGS_DOC)
