"""Multi-head recurrent layer attention (MRLA), Fang et al., ICLR 2023.

Two operators, both applied once per residual block, on the block output
``out = relu(residual + shortcut)``:

* :class:`MRLALight` (the paper's Eq. 8, linear in depth): one sigmoid gate per
  32-channel head scales a depthwise-3x3 value of the current block, plus
  ``lambda_t * identity``, where ``identity`` is the block input after the projection
  shortcut (the recurrence ``o_t = attn_t + lambda_t * o_{t-1}`` rides on the block input,
  no state passes between blocks).
* :class:`MRLABase` (the paper's Eq. 6, quadratic in depth): the query of block ``t`` takes a
  softmax over the keys of blocks ``1..t`` of the same stage and reads their values.

The block (see ``mmattn.models.backbones.mrla_resnet``) owns the BatchNorm ``bn_mrla``
applied to what these modules return, the optional drop path, and the sum with ``out``.

Parameter names follow the official code (github.com/joyfang1106/MRLA) so converted
checkpoints load without renaming inside a block: ``mrla.mrla.Wq.weight`` [1, 1, k],
``mrla.mrla.Wk.weight`` [1, 1, k], ``mrla.mrla.Wv.weight`` [C, 1, 3, 3] and
``mrla.lambda_t`` [C, 1, 1].
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .attention import outside_autocast
from .base import AttnModule, check_choice, check_int, register_operator, to_hw

__all__ = ['eca_kernel_size', 'MRLAProjection', 'MRLALight', 'MRLABase']

_LAMBDA_INITS = ('randn', 'zeros', 'ones')


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA-Net's adaptive 1-D kernel size: ``|log2(C) / gamma + b / gamma|`` made odd.

    With the defaults (those of ECA-Net and MRLA) this is 5 for 256, 512 and 1024 channels
    and 7 for 2048.
    """
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f'eca_kernel_size: channels={channels!r} must be a positive int')
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@register_operator
class MRLAProjection(AttnModule):
    """Query, key and value of one layer, shared by MRLA-light and MRLA-base.

    Query and key are ECA-style: a 1-D convolution (one input and output channel, no bias)
    sliding along the channel axis of the globally average-pooled feature, so each costs
    ``k`` parameters whatever the width. The value is a depthwise 3x3 convolution.

    Args:
        channels (int): Channels C of the feature (input = output).
        head_channels (int): Channels per head; C / head_channels heads.
        kernel_size (int, optional): Kernel of the 1-D convs; ``None`` means the ECA
            adaptive size (:func:`eca_kernel_size`), as in the official code.

    Returns (forward):
        q, k: ``(B, heads, head_channels)``; v: ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, head_channels: int, kernel_size: Optional[int] = None):
        super().__init__()
        channels = check_int('MRLA', 'channels', channels, 1)
        if not isinstance(head_channels, int) or head_channels < 1 or channels % head_channels:
            raise ValueError(f'MRLA: head_channels={head_channels!r} must be a positive int '
                             f'dividing channels={channels}')
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'MRLA: kernel_size={kernel_size!r} must be a positive odd int '
                             '(or None for the ECA adaptive size)')
        self.channels = channels
        self.head_channels = head_channels
        self.num_heads = channels // head_channels
        self.kernel_size = kernel_size
        pad = (kernel_size - 1) // 2
        self.Wq = nn.Conv1d(1, 1, kernel_size, padding=pad, bias=False)
        self.Wk = nn.Conv1d(1, 1, kernel_size, padding=pad, bias=False)
        self.Wv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)

    def flops(self, input_hw) -> int:
        """Multiply-adds: the two 1-D convs over the pooled channels and the depthwise 3x3."""
        h, w = to_hw(input_hw)
        return 2 * self.kernel_size * self.channels + 9 * self.channels * h * w

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'MRLA: expected input (N, {self.channels}, H, W) for '
                             f'channels={self.channels}, got '
                             f'{tuple(x.shape)}')
        b = x.shape[0]
        y = x.mean(dim=(2, 3)).unsqueeze(1)  # GAP as a (B, 1, C) sequence
        # q and k (B x C floats) in the weights' precision under autocast: the gate or softmax
        # over q.k saturates at large activations, where half-precision q, k lose its gradient
        q = outside_autocast(self.Wq, y, self.Wq.weight.dtype).view(b, self.num_heads,
                                                                     self.head_channels)
        k = outside_autocast(self.Wk, y, self.Wk.weight.dtype).view(b, self.num_heads,
                                                                     self.head_channels)
        v = self.Wv(x)
        return q, k, v

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, heads={self.num_heads}, '
                f'kernel_size={self.kernel_size}')


@register_operator
class MRLALight(AttnModule):
    """MRLA-light (Eq. 8): ``sigmoid(<q_h, k_h> / sqrt(d)) * v_h + lambda_t * identity``.

    Query and key of the same layer give one scalar gate per head (the linearised form of
    attending to all earlier layers: their contribution arrives through ``identity``, the
    previous block's output, scaled per channel by ``lambda_t``).

    Args:
        channels (int): Channels C of the block output.
        head_channels (int): Channels per head. Default 32 (official).
        kernel_size (int, optional): 1-D conv kernel; None = ECA adaptive size (official).
        use_lambda (bool): Keep the ``lambda_t * identity`` term and its C parameters.
            Default True (official). The paper's "0.16M extra parameters" for ResNet-50 is
            thop's count, which does not see ``lambda_t`` (a bare ``nn.Parameter``); the
            model still has it: 181,420 extra parameters with it, 166,316 without.
        lambda_init (str): 'randn' (official: ``torch.randn(C, 1, 1)``), 'zeros' (the block
            starts without the recurrent term) or 'ones'. Default 'randn'.
        record_attention (bool): Keep the last gates, ``(B, heads)``, detached, in
            ``self.last_attention`` (for ``tools/analysis_tools/mrla_attention_map.py``) and
            as ``gate`` in ``attention_record`` (the contract's
            :func:`~mmattn.models.layers.base.record_attention` sets this flag).

    Forward: ``forward(x, identity)`` with both ``(B, C, H, W)``; returns ``(B, C, H, W)``,
    before the block's ``bn_mrla``.
    """

    attention_maps = ('gate', )

    def __init__(self, channels: int, head_channels: int = 32,
                 kernel_size: Optional[int] = None, use_lambda: bool = True,
                 lambda_init: str = 'randn', record_attention: bool = False):
        super().__init__()
        check_choice('MRLALight', 'lambda_init', lambda_init, _LAMBDA_INITS)
        self.mrla = MRLAProjection(channels, head_channels, kernel_size)
        self.use_lambda = bool(use_lambda)
        self.lambda_init = lambda_init
        if self.use_lambda:
            init = {'randn': torch.randn, 'zeros': torch.zeros, 'ones': torch.ones}[lambda_init]
            self.lambda_t = nn.Parameter(init(channels, 1, 1))
        else:
            self.register_parameter('lambda_t', None)
        self.record_attention = record_attention
        self.last_attention: Optional[Tensor] = None

    @property
    def num_heads(self) -> int:
        return self.mrla.num_heads

    def forward(self, x: Tensor, identity: Optional[Tensor] = None) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.mrla(x)
        gate = torch.sigmoid((q * k).sum(-1) * self.mrla.head_channels ** -0.5)  # (B, heads)
        if self.record_attention:
            self.last_attention = gate.detach()
            self._record(gate=gate)
        # explicit sizes: with an empty batch a -1 cannot be inferred
        out = v.view(b, self.num_heads, self.mrla.head_channels, h, w) * gate.view(
            b, self.num_heads, 1, 1, 1)
        out = out.view(b, c, h, w)
        if self.use_lambda:
            if identity is None:
                raise ValueError('MRLALight: identity (the block input after the shortcut '
                                 'projection) is required when use_lambda=True')
            out = out + self.lambda_t * identity
        return out

    def flops(self, input_hw) -> int:
        """Multiply-adds of the projections (the gate and the sums are element-wise)."""
        return self.mrla.flops(input_hw)

    def extra_repr(self) -> str:
        return f'use_lambda={self.use_lambda}, lambda_init={self.lambda_init!r}'


@register_operator
class MRLABase(AttnModule):
    """MRLA-base (Eq. 6): block ``t`` attends over the keys/values of blocks ``1..t`` of its
    stage; one softmax per head (heads of 16 channels, official).

    ``forward(x, keys, values)`` takes the keys ``(B, heads, d)`` and values ``(B, C, H, W)``
    of the earlier blocks of the stage (empty tuples at the first block: the history is reset
    per stage, as the official ``init_cell``) and returns ``(out, k_t, v_t)``; the caller
    appends ``k_t``/``v_t`` to the history it passes to the next block.

    Memory. The official code concatenates the value history at every block
    (``torch.cat((prev_V, v))``) and its einsum saves each concatenation for the backward
    pass, so a stage of T blocks keeps T(T+1)/2 value maps. Here nothing is concatenated: the
    output is accumulated as ``sum_s a_s * v_s`` with ``torch.addcmul`` over the values
    themselves, so each block's value map exists once, shared by every later block's graph,
    and the history of a stage costs exactly T value maps (what a buffer preallocated per
    stage would hold; an in-place slot write into such a buffer would bump the version
    counter that autograd checks on the slices saved by earlier blocks, and running sums are
    not possible because the softmax weights of all earlier values change with every new
    query). Only the keys, ``B x t x C`` floats, are stacked per block.

    Worked numbers, ResNet-101 at a 1333x800 image, fp32, per image (feature maps 334x200,
    167x100, 84x50, 42x25 for C = 256, 512, 1024, 2048 and 3, 4, 23, 3 blocks):
    one value map of layer3 is 1024*84*50*4 B = 17.2 MB; the history held here is
    205 + 137 + 396 + 26 = 764 MB (layer3: 23 maps, 396 MB), against
    410 + 342 + 4748 + 52 = 5552 MB saved by the concatenating form in training
    (layer3: 276 maps). In inference the concatenating form peaks at 2T-1 maps per stage
    (old and new concatenation alive together, 774 MB in layer3), this form at T (396 MB).

    Args:
        channels (int): Channels C.
        head_channels (int): Channels per head. Default 16 (official MRLA-base).
        kernel_size (int, optional): 1-D conv kernel; None = ECA adaptive size (official).
        record_attention (bool): Keep the last softmax, ``(B, heads, t)``, detached, in
            ``self.last_attention`` and as ``probs`` in ``attention_record`` (the contract's
            :func:`~mmattn.models.layers.base.record_attention` sets this flag): block ``t``'s
            weights over blocks ``1..t`` of its stage, the last one itself; rows sum to 1.
    """

    attention_maps = ('probs', )

    def __init__(self, channels: int, head_channels: int = 16,
                 kernel_size: Optional[int] = None, record_attention: bool = False):
        super().__init__()
        self.mrla = MRLAProjection(channels, head_channels, kernel_size)
        self.record_attention = record_attention
        self.last_attention: Optional[Tensor] = None

    @property
    def num_heads(self) -> int:
        return self.mrla.num_heads

    def flops(self, input_hw, history: int = 0) -> int:
        """Multiply-adds at block ``history + 1`` of a stage (``history`` earlier blocks): the
        projections, the query against ``t = history + 1`` keys, and the weighted sum of the
        ``t`` value maps (element-wise ``addcmul``, ``t`` multiply-adds per value element)."""
        h, w = to_hw(input_hw)
        t, c = history + 1, self.mrla.channels
        return self.mrla.flops((h, w)) + t * c + t * c * h * w

    def forward(self, x: Tensor, keys: Sequence[Tensor] = (),
                values: Sequence[Tensor] = ()) -> Tuple[Tensor, Tensor, Tensor]:
        if len(keys) != len(values):
            raise ValueError(f'MRLABase: got {len(keys)} keys and {len(values)} values')
        b, c, h, w = x.shape
        g = self.num_heads
        q, k, v = self.mrla(x)
        all_k = torch.stack(tuple(keys) + (k,), dim=2)  # (B, g, t, d): B*t*C floats
        scores = torch.einsum('bgd,bgtd->bgt', q, all_k) * self.mrla.head_channels ** -0.5
        attn = scores.softmax(dim=-1)
        if self.record_attention:
            self.last_attention = attn.detach()
            self._record(probs=attn)
        all_v = tuple(values) + (v,)
        out = None
        for s, v_s in enumerate(all_v):
            if v_s.shape != v.shape:
                raise ValueError(f'MRLABase: value {s} of the history has shape '
                                 f'{tuple(v_s.shape)}, the current one {tuple(v.shape)}')
            a_s = attn[:, :, s].reshape(b, g, 1, 1, 1)
            v_s = v_s.view(b, g, self.mrla.head_channels, h, w)
            out = v_s * a_s if out is None else torch.addcmul(out, v_s, a_s)
        return out.reshape(b, c, h, w), k, v
