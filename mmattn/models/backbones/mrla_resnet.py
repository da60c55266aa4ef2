"""ResNet with multi-head recurrent layer attention (MRLA, Fang et al., ICLR 2023).

Every bottleneck gains, after its ``out = relu(residual + shortcut)``::

    light: out = out + drop_path(bn_mrla(MRLALight(out, identity)))
    base:  out = out + drop_path(relu(bn_mrla(MRLABase(out, history of the stage))))

which is what the official code does (``resnet/models/resnet_mrla_light.py``,
``resnet_mrla_base.py`` and the mmdetection 2.x ``ResNet_mrlal``); the ReLU after
``bn_mrla`` exists in the official base model only. Block submodules keep the official
names (``mrla``, ``bn_mrla``) so ``layer1.0.mrla.mrla.Wq.weight`` is a key here as there.

Everything else is mmseg's ``ResNet`` (a superset of mmdet's), so ``frozen_stages``,
``norm_eval``, ``with_cp``, ``out_indices``, ``strides``, ``dilations``, ``multi_grid``,
``contract_dilation``, ``deep_stem``, ``plugins``, ``dcn`` and ``init_cfg`` behave as there.
The official MRLA-base classification model uses a deep stem (three 3x3 convs, 32-32-64):
``deep_stem=True`` reproduces it (``tools/model_converters/mrla_to_mmattn.py`` maps its keys).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from mmseg.models.backbones import ResNet
from mmseg.models.backbones.resnet import Bottleneck
from torch import Tensor

from mmattn.models.layers.mrla import MRLABase, MRLALight
from mmattn.registry import MODELS
from .resnet_common import ResNetCommon

__all__ = ['MRLABottleneck', 'MRLAResNet']

MRLA_TYPES = ('light', 'base')


class MRLABottleneck(Bottleneck):
    """mmseg's Bottleneck followed by an MRLA branch on its output.

    Args:
        mrla_type (str): 'light' (MRLA-light, forward ``x -> out``) or 'base' (MRLA-base,
            forward ``(x, keys, values) -> (out, k, v)``, the caller keeps the history).
        drop_path (float): Drop-path rate on the MRLA branch only (the residual branch is
            not dropped), as the official code. Default 0.
        mrla_cfg (dict, optional): Keyword arguments of :class:`MRLALight` /
            :class:`MRLABase` (``head_channels``, ``kernel_size``, ``use_lambda``,
            ``lambda_init``).
        **kwargs: mmseg ``Bottleneck`` arguments.
    """

    def __init__(self, inplanes: int, planes: int, mrla_type: str = 'light',
                 drop_path: float = 0., mrla_cfg: Optional[dict] = None, **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        if mrla_type not in MRLA_TYPES:
            raise ValueError(f'MRLABottleneck: mrla_type={mrla_type!r} is not one of '
                             f'{MRLA_TYPES}')
        channels = planes * self.expansion
        self.mrla_type = mrla_type
        mrla_cls = MRLALight if mrla_type == 'light' else MRLABase
        self.mrla = mrla_cls(channels, **(mrla_cfg or {}))
        # added as 'bn_mrla' whatever the norm type, to keep the official key
        self.add_module('bn_mrla', build_norm_layer(self.norm_cfg, channels)[1])
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _residual(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """mmseg's bottleneck up to and including the ReLU after the sum; also returns the
        shortcut (the ``o_{t-1}`` of MRLA-light)."""
        identity = x
        out = self.relu(self.norm1(self.conv1(x)))
        if self.with_plugins:
            out = self.forward_plugin(out, self.after_conv1_plugin_names)
        out = self.relu(self.norm2(self.conv2(out)))
        if self.with_plugins:
            out = self.forward_plugin(out, self.after_conv2_plugin_names)
        out = self.norm3(self.conv3(out))
        if self.with_plugins:
            out = self.forward_plugin(out, self.after_conv3_plugin_names)
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity), identity

    def _forward_light(self, x: Tensor) -> Tensor:
        out, identity = self._residual(x)
        return out + self.drop_path(self.bn_mrla(self.mrla(out, identity)))

    def _forward_base(self, x: Tensor, keys: Tuple[Tensor, ...],
                      values: Tuple[Tensor, ...]) -> Tuple[Tensor, Tensor, Tensor]:
        out, _ = self._residual(x)
        attn, k, v = self.mrla(out, keys, values)
        attn = self.relu(self.bn_mrla(attn))
        return out + self.drop_path(attn), k, v

    def forward(self, x: Tensor, keys: Sequence[Tensor] = (), values: Sequence[Tensor] = ()):
        """Light: ``forward(x) -> out``. Base: ``forward(x, keys, values) -> (out, k, v)``.

        With ``with_cp`` the whole block is recomputed in the backward pass. The
        non-reentrant checkpoint is used because it propagates gradients to every tensor the
        block reads, including the earlier blocks' keys/values of MRLA-base (the reentrant one
        only reaches tensors passed as direct arguments) and the parameters when the input
        needs no gradient (a frozen stem). The history is passed as tuples, so the recompute
        sees exactly the history of the first pass.
        """
        use_cp = self.with_cp and torch.is_grad_enabled()
        if self.mrla_type == 'light':
            if len(keys) or len(values):
                raise ValueError('MRLABottleneck: mrla_type=light takes no keys/values')
            if use_cp:
                return cp.checkpoint(self._forward_light, x, use_reentrant=False)
            return self._forward_light(x)
        keys, values = tuple(keys), tuple(values)
        if use_cp:
            return cp.checkpoint(self._forward_base, x, keys, values, use_reentrant=False)
        return self._forward_base(x, keys, values)


@MODELS.register_module()
class MRLAResNet(ResNetCommon, ResNet):
    """mmseg ResNet-50/101/152 with MRLA in every bottleneck.

    Args:
        depth (int): 50, 101 or 152.
        mrla_type (str): 'light' (linear in depth; the detection/segmentation version) or
            'base' (quadratic; softmax over all earlier blocks of the stage; see
            :class:`mmattn.models.layers.mrla.MRLABase` for its memory). Default 'light'.
        drop_path_rate (float): Drop-path rate of the MRLA branch, the same in every block
            (official: a constant, not a depth-wise ramp). 0.2 in the official ImageNet
            training, 0 for detection. Default 0.
        mrla_cfg (dict, optional): Extra arguments of the MRLA modules, e.g.
            ``dict(lambda_init='zeros')`` or ``dict(use_lambda=False)``; defaults are the
            official ones (heads of 32 channels for light, 16 for base, ECA kernel size,
            ``lambda_t`` randn), except ``lambda_init='zeros'`` when ``norm_eval=True``.
        **kwargs: Everything mmseg's ``ResNet`` takes (``frozen_stages``, ``norm_eval``,
            ``with_cp``, ``out_indices``, ``strides``, ``dilations``, ``init_cfg``...).
            ``zero_init_residual`` (default True) zero-initialises ``norm3`` as the
            official ``zero_init_last_bn``.

    Extra parameters over the plain ResNet (with / without ``lambda_t``): R50 181,420 /
    166,316; R101 390,486 / 357,974 (light; the official counts).
    """

    arch_settings = {
        50: (MRLABottleneck, (3, 4, 6, 3)),
        101: (MRLABottleneck, (3, 4, 23, 3)),
        152: (MRLABottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int = 50, mrla_type: str = 'light', drop_path_rate: float = 0.,
                 mrla_cfg: Optional[dict] = None, **kwargs):
        self._check_common_args(depth, kwargs)
        if mrla_type not in MRLA_TYPES:
            raise ValueError(f'MRLAResNet: mrla_type={mrla_type!r} is not one of {MRLA_TYPES}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'MRLAResNet: drop_path_rate={drop_path_rate!r} must be in [0, 1)')
        if mrla_cfg is not None and not isinstance(mrla_cfg, dict):
            raise ValueError(f'MRLAResNet: mrla_cfg={mrla_cfg!r} must be a dict or None')
        self.mrla_type = mrla_type
        self.drop_path_rate = drop_path_rate
        self.mrla_cfg = dict(mrla_cfg or {})
        if kwargs.get('norm_eval', False) and mrla_type == 'light':
            # bn_mrla frozen at its init (the identity) cannot tame a randn lambda_t: from
            # scratch in a stock detection config the loss diverged (6.9 -> 1.9e5 by iteration
            # 2); a checkpoint overwrites lambda_t anyway (configs/mrla/README.md)
            self.mrla_cfg.setdefault('lambda_init', 'zeros')
        super().__init__(depth, **kwargs)
        self._zero_init_blocks(kwargs, (MRLABottleneck, ))  # the official zero_init_last_bn

    def make_res_layer(self, **kwargs):
        kwargs.update(mrla_type=self.mrla_type, drop_path=self.drop_path_rate,
                      mrla_cfg=self.mrla_cfg)
        return super().make_res_layer(**kwargs)

    def mrla_modules(self) -> List[Tuple[int, int, nn.Module]]:
        """``(stage index, block index, MRLALight | MRLABase)`` of every block."""
        found = []
        for i, name in enumerate(self.res_layers):
            for j, block in enumerate(getattr(self, name)):
                found.append((i, j, block.mrla))
        return found

    def record_attention(self, enabled: bool = True) -> None:
        """Make every MRLA module keep its last scores in ``last_attention`` (base: the
        softmax over the earlier blocks, ``(B, heads, t)``; light: the gates, ``(B, heads)``)."""
        for _, _, m in self.mrla_modules():
            m.record_attention = enabled
            if not enabled:
                m.last_attention = None

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            res_layer = getattr(self, layer_name)
            if self.mrla_type == 'base':
                # the history restarts at each stage (official init_cell); each value map is
                # kept once, shared by the later blocks (see MRLABase for the memory)
                keys, values = (), ()
                for block in res_layer:
                    x, k, v = block(x, keys, values)
                    keys, values = keys + (k,), values + (v,)
                del keys, values
            else:
                x = res_layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
