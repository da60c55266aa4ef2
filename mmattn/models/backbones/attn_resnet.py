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
import inspect
from typing import Sequence

import torch.nn as nn
from mmseg.models.backbones import ResNeSt, ResNet, ResNeXt
from mmseg.models.backbones.resnet import Bottleneck

from mmattn.models.layers.base import AttnOperator, list_operators
from mmattn.registry import MODELS
from .resnet_common import ResNetCommon

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
    if not isinstance(spec, Sequence):
        raise ValueError(f'op_blocks[{stage}]={spec!r}: accepted one of {OP_BLOCK_CHOICES} or a '
                         f'list of distinct block indices in [0, {num_blocks - 1}]')
    idx = list(spec)
    bad = [i for i in idx if isinstance(i, bool) or not (isinstance(i, int)
                                                         and 0 <= i < num_blocks)]
    if bad or len(set(idx)) != len(idx):
        raise ValueError(f'op_blocks[{stage}]={spec!r}: block indices must be distinct ints in '
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


def _operator_class(stage, op_cfg):
    """The registered operator class an entry of ``stage_ops`` names (a name or the class)."""
    names = sorted(list_operators())
    if not isinstance(op_cfg, dict) or 'type' not in op_cfg:
        raise ValueError(f'stage_ops[{stage}]={op_cfg!r}: must be a dict with a '
                         "'type' key (e.g. dict(type='LESA')) or None")
    op_type = op_cfg['type']
    if isinstance(op_type, type):
        if issubclass(op_type, AttnOperator):
            return op_type
        raise ValueError(f'stage_ops[{stage}].type={op_type.__name__} is not an attention '
                         f'operator (a subclass of AttnOperator); registered: {names}')
    if not isinstance(op_type, str) or op_type not in MODELS:
        raise ValueError(f'stage_ops[{stage}].type={op_type!r} is not a registered operator; '
                         f'known attention operators: {names}')
    return MODELS.get(op_type)


class WideBottleneck(Bottleneck):
    """mmseg's Bottleneck whose output is 2x (not 4x) its width: Wide ResNet-50-2 is
    ``base_channels=128, expansion=2``, as mmpretrain's ``ResNet(expansion=2)``."""
    expansion = 2


class AttnStagesMixin(ResNetCommon):
    """Swaps bottleneck ``conv2`` modules for the operators named per stage; checks what a
    Pretrained init loaded (:mod:`.checkpoint_check`).

    Placed before one of mmseg's ResNet classes; ``wide_blocks`` maps an ``expansion`` to the
    block class that has it (``arch_settings`` then serves that block for the chosen depth).
    """

    wide_blocks = {}

    def __init__(self, *args, stage_ops=None, op_blocks='all', expansion=None,
                 allow_uninitialised=False, **kwargs):
        name = type(self).__name__
        depth = kwargs.get('depth', args[0] if args else None)
        self._check_common_args(depth, kwargs)
        self._wide_block = None
        if expansion is not None:
            block = self._depth_table()[depth][0]
            accepted = (block.expansion, *self.wide_blocks)
            if expansion not in accepted:
                raise ValueError(f'{name}: expansion={expansion!r} is not one of {accepted} '
                                 f'for depth={depth} (4 for ResNet; 2 with base_channels=128 '
                                 'for WRN-50-2)')
            if expansion != block.expansion:
                self._wide_block = self.wide_blocks[expansion]
        super().__init__(*args, allow_uninitialised=allow_uninitialised, **kwargs)
        if self._wide_block is not None:
            self._zero_init_blocks(kwargs, (self._wide_block, ))
        self._replace_convs(stage_ops, op_blocks)

    @property
    def arch_settings(self):
        """The base class's table, with the wide block for the chosen ``expansion``."""
        table = self._depth_table()
        wide = self.__dict__.get('_wide_block')
        if wide is None:
            return table
        return {d: (wide, blocks) for d, (_, blocks) in table.items()}

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
            op_cls = _operator_class(stage, op_cfg)
            layer = getattr(self, self.res_layers[stage])
            for b in _block_indices(spec, len(layer), stage):
                self._replace_block_conv(stage, b, layer[b], op_cls, op_cfg)
        self._freeze_stages()

    def _replace_block_conv(self, stage, b, block, op_cls, op_cfg):
        where = f'{self.res_layers[stage]}[{b}].conv2'
        # ResNeSt: the 3x3 conv sits inside the split-attention conv (radix groups);
        # the split attention (norm0, fc1/fc2, rSoftMax) stays around the operator.
        owner = block.conv2 if hasattr(block.conv2, 'radix') else block
        conv = owner.conv if owner is not block else block.conv2
        if not hasattr(conv, 'in_channels'):
            raise ValueError(f'stage_ops[{stage}]: {where} is a {type(conv).__name__}, not a '
                             '3x3 conv that an operator can replace')
        cfg = dict(op_cfg, type=op_cls)
        args = _conv_args(conv)
        cfg.update(args)
        if 'norm_cfg' not in cfg and 'norm_cfg' in inspect.signature(op_cls).parameters:
            cfg['norm_cfg'] = self.norm_cfg  # the operator's norms follow the backbone's
        try:
            op = MODELS.build(cfg)
        except (ValueError, TypeError) as e:
            # name the stage and block: the operator only knows its own arguments
            raise type(e)(f'stage_ops[{stage}] ({where}, {conv.in_channels} -> '
                          f'{conv.out_channels} channels, stride {args["stride"]}): {e}') from e
        if 'Deform' in type(conv).__name__ and not any('Deform' in type(m).__name__
                                                        for m in op.modules()):
            raise ValueError(
                f'stage_ops[{stage}]={op_cls.__name__} and dcn (stage_with_dcn[{stage}]=True) '
                f'both claim {where}: the operator would silently drop the deformable conv. '
                f'Accepted: stage_with_dcn[{stage}]=False, op_blocks[{stage}] without this '
                "block, or an operator that keeps a deformable conv (LESA with unary='dcn')")
        if owner is block:
            block.conv2 = op
        else:
            owner.conv = op
            self._nested_ops.append(op)
        if owner is block and getattr(op, 'norm_inside', False) and hasattr(block, 'norm2_name'):
            # The operator ends with its own norm (official LESA skips bn2).
            setattr(block, block.norm2_name, nn.Identity())
            self._move_zero_init(block, op)

    @staticmethod
    def _move_zero_init(block, op):
        """A zero init of norm2 (mmseg's BasicBlock) moves to the norms ending the operator."""
        cfg = block.init_cfg
        override = cfg.get('override') if isinstance(cfg, dict) else None
        if not (isinstance(override, dict)
                and override.get('name') in ('norm2', block.norm2_name)):
            return
        block.init_cfg = None
        zero = dict(type='Constant', val=0,
                    override=[dict(name=n) for n in op.last_norm_names()])
        own = op.init_cfg if isinstance(op.init_cfg, list) else \
            [op.init_cfg] if op.init_cfg else []
        op.init_cfg = [*own, zero]

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


_ARGS_DOC = """

    Args (in addition to those of the base class):
        stage_ops (Sequence[dict | None]): per stage, the operator config that replaces the
            selected blocks' 3x3 ``conv2`` (its conv arguments are filled in from the conv,
            ``norm_cfg`` from the backbone's unless given), or None to keep the conv. ``type``
            is a registered operator's name or class (:func:`~mmattn.models.layers.list_operators`).
        op_blocks (str | Sequence): per stage (or one for all) which blocks: 'all',
            'all_but_first' (e.g. LESA keeps layer3[0]'s strided conv), 'first', 'none', or a
            list of distinct block indices.
        expansion (int, optional): block output / bottleneck width; 2 with
            ``base_channels=128`` is WRN-50-2 (as mmpretrain's ResNet); default the block's.
        allow_uninitialised (bool | Sequence[str]): after a Pretrained init the backbone
            raises if an attention-operator tensor was not loaded or any tensor's shape
            differs; True only reports, a sequence of fnmatch patterns (``'*.rel_height'``)
            allows those keys. See :mod:`mmattn.models.backbones.checkpoint_check`.
"""


@MODELS.register_module()
class AttnResNet(AttnStagesMixin, ResNet):
    __doc__ = 'mmseg ResNet with per-stage attention operators.' + _ARGS_DOC
    wide_blocks = {2: WideBottleneck}


@MODELS.register_module()
class AttnResNeXt(AttnStagesMixin, ResNeXt):
    __doc__ = 'mmseg ResNeXt with per-stage attention operators.' + _ARGS_DOC


@MODELS.register_module()
class AttnResNeSt(AttnStagesMixin, ResNeSt):
    __doc__ = ('mmseg ResNeSt with per-stage attention operators (replaces the split '
               "attention conv's inner conv, see la_layer)." + _ARGS_DOC)
