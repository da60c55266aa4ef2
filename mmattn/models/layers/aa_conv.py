"""Attention Augmented Convolution (Bello et al., ICCV 2019), as a 3x3-conv replacement.

``AAConv(X) = concat[Conv_kxk(X) (Fout - dv channels), MHA(X) (dv channels)]`` (AA Eq. 5):
one 1x1 conv gives q, k, v (``2 dk + dv`` channels, each head-major as the appendix's
``split_heads_2d``), ``q`` is scaled by ``dkh ** -0.5`` before both the content and the relative
logits (appendix ``q *= dkh ** -0.5``), logits ``q.k + S_H + S_W`` (Eq. 3-4) with one width and
one height table per layer shared across heads, softmax over all ``HW`` keys, heads
concatenated, then the 1x1 output conv ``W^O`` (dv -> dv). The block's BatchNorm follows
(``norm_inside = False``).

Depths (the rounding that reproduces the paper's parameter counts; AA-ResNet-50 with
``kappa=0.2, upsilon=0.1, Nh=8``, every bottleneck 3x3 of stages 2-4 augmented, tables at the
224-input feature sizes 28/14/7, no biases in the attention convs: 25,781,872 = "25.8M";
R101 45,359,208; R152 61,558,496; ``kappa = upsilon = 0.2``: 24,803,248):

- ``dv = Nh * round(upsilon * Fout / Nh)`` (round half up; at least one channel per head);
- ``dk = Nh * max(min_key_dims_per_head, round(kappa * Fout / Nh))`` (the paper's "a minimum
  of 20 dimensions per head for the keys").

``dk``/``dv`` may also be given directly; they must then be multiples of ``num_heads`` and give
at least ``min_key_dims_per_head`` key dims per head.

Stride 2 (and ``attn_downsample=True`` at stride 1): the attention input is average pooled
3x3, stride 2, padding 1 (AA Sec. 3.3; ``count_include_pad=False`` as TF's SAME pooling), which
gives ``ceil(H / 2)`` like the strided conv; at stride 1 the attention output is upsampled back
bilinearly, as the paper does before concatenating.
"""
import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import check_attn_impl, outside_autocast, relative_attention
from .base import (AttnOperator, check_choice, check_int, check_number, register_operator,
                   to_hw)
from .position import check_beyond_max, slice_relative_table, to_2tuple_size

AA_POS_ENCS = ('relative', 'none', 'sine', 'coordconv')


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def aa_depths(out_channels: int, kappa: float, upsilon: float, num_heads: int,
              min_key_dims_per_head: int) -> Tuple[int, int]:
    """``(dk, dv)`` by the rounding documented in the module docstring."""
    dv = num_heads * max(1, _round_half_up(upsilon * out_channels / num_heads))
    dkh = max(min_key_dims_per_head, _round_half_up(kappa * out_channels / num_heads))
    return num_heads * dkh, dv


def sine_position_2d(channels: int, h: int, w: int, device=None, dtype=None) -> Tensor:
    """2-D sinusoidal waves (Image Transformer style): half the channels encode the row, half
    the column, each half split into sin and cos at geometric frequencies. ``(channels, h, w)``;
    channels beyond a multiple of 4 are zero."""
    quarter = channels // 4
    out = torch.zeros(channels, h, w, device=device, dtype=dtype)
    if quarter == 0:
        return out
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float32)
                     / quarter)
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None] * freq    # (h, quarter)
    xs = torch.arange(w, device=device, dtype=torch.float32)[:, None] * freq    # (w, quarter)
    row = torch.cat([ys.sin(), ys.cos()], 1).t()[:, :, None].expand(-1, h, w)
    col = torch.cat([xs.sin(), xs.cos()], 1).t()[:, None, :].expand(-1, h, w)
    out[:4 * quarter] = torch.cat([row, col], 0).to(out.dtype)
    return out


def coord_channels(n: int, h: int, w: int, device=None, dtype=None) -> Tensor:
    """CoordConv ``(x, y, r)`` channels in [-1, 1] (``r`` the distance to the centre)."""
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype) if h > 1 else \
        torch.zeros(1, device=device, dtype=dtype)
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype) if w > 1 else \
        torch.zeros(1, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    rr = torch.sqrt(xx.square() + yy.square())
    return torch.stack([xx, yy, rr])[None].expand(n, 3, h, w)


@register_operator
class AAConv2d(AttnOperator):
    """Attention augmented convolution; a drop-in for a conv (the bottleneck's 3x3).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: those
            of the conv it replaces; the conv branch keeps them with ``out_channels - dv``
            outputs (no conv branch when ``dv == out_channels``). ``stride`` must be 1 or 2.
        kappa: key depth ratio ``dk / Fout`` (paper: 0.2), a number > 0.
        upsilon: attention channel ratio ``dv / Fout`` (paper: 0.1 for ResNets on ImageNet),
            in (0, 1] (1: attention only, no conv branch).
        num_heads: Nh (paper: 8).
        min_key_dims_per_head: floor on ``dk / Nh`` (paper: 20).
        dk, dv: explicit depths instead of ``kappa``/``upsilon``.
        pos_enc: ``'relative'`` (the paper's 2-D relative logits), ``'none'``, ``'sine'`` (2-D
            sinusoids added to the attention input) or ``'coordconv'`` ((x, y, r) channels
            concatenated to the attention input), the four encodings of AA Tables 7-8.
        max_size: feature size (int or (H, W)) of the relative tables (AA-ResNet-50 at 224: 28,
            14, 7 for stages 2-4; the stride-2 first block of stage 2 attends at its pooled 28).
        beyond_max: ``'interpolate'`` or ``'error'`` for inputs beyond ``max_size``.
        attn_downsample: pool the attention input 3x3/2 even at stride 1 and upsample the
            attention output bilinearly (the paper's memory saver for large maps).
        attn_impl: ``'auto'`` | ``'explicit'`` | ``'fused'`` | None (module default).
        init_cfg: mmengine ``init_cfg`` (default: PyTorch's conv init, tables as below).

    Attention maps (:func:`~mmattn.models.layers.base.record_attention`): ``probs`` ``(B,
    heads, HW, HW)``, each head's softmax over the keys (row = query, raster order) at the
    attention size ``size`` = (H, W) (the pooled input at stride 2 or with
    ``attn_downsample``), computed on the explicit path.

    The tables are initialised with ``std = dkh ** -0.5``: the appendix's
    ``random_normal_initializer(dkh ** -0.5)`` sets the *mean* in TF1's positional signature,
    which is surely unintended; timm's port reads it as the std, and so do we.
    """

    attention_maps = ('probs', )

    norm_inside = False

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]] = 3,
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding=1,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = False,
                 *,
                 kappa: float = 0.2,
                 upsilon: float = 0.1,
                 num_heads: int = 8,
                 min_key_dims_per_head: int = 20,
                 dk: Optional[int] = None,
                 dv: Optional[int] = None,
                 pos_enc: str = 'relative',
                 max_size: Union[int, Tuple[int, int]] = 64,
                 beyond_max: str = 'interpolate',
                 attn_downsample: bool = False,
                 attn_impl: Optional[str] = None,
                 init_cfg=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init_cfg=init_cfg)
        owner = type(self).__name__
        check_choice(owner, 'pos_enc', pos_enc, AA_POS_ENCS)
        self.beyond_max = check_beyond_max(beyond_max, owner)
        if attn_impl is not None:
            check_attn_impl(attn_impl, owner)
        self.check_accepted('stride', (1, 2))
        stride = self.stride
        num_heads = check_int(owner, 'num_heads', num_heads, 1)
        min_key_dims_per_head = check_int(owner, 'min_key_dims_per_head',
                                          min_key_dims_per_head, 1)
        # a zero or negative ratio would round to the one-channel-per-head floor silently
        check_number(owner, 'kappa', kappa, low=0, low_open=True)
        check_number(owner, 'upsilon', upsilon, low=0, high=1, low_open=True)
        auto_dk, auto_dv = aa_depths(out_channels, kappa, upsilon, num_heads,
                                     min_key_dims_per_head)
        dk = auto_dk if dk is None else dk
        dv = auto_dv if dv is None else dv
        if dk % num_heads != 0:
            raise ValueError(f'{owner}: num_heads={num_heads} must divide dk={dk}')
        if dv % num_heads != 0 or dv <= 0:
            raise ValueError(f'{owner}: num_heads={num_heads} must divide dv={dv} (> 0)')
        if dk // num_heads < min_key_dims_per_head:
            raise ValueError(f'{owner}: dk={dk} gives {dk // num_heads} key dims per head, below '
                             f'min_key_dims_per_head={min_key_dims_per_head}')
        if dv > out_channels:
            raise ValueError(f'{owner}: dv={dv} exceeds out_channels={out_channels} '
                             f'(upsilon={upsilon})')
        if out_channels > dv and (in_channels % groups or (out_channels - dv) % groups):
            # ResNeXt's grouped 3x3: the conv branch keeps the groups and has out_channels - dv
            raise ValueError(f'{owner}: groups={groups} must divide in_channels={in_channels} '
                             f'and the conv branch out_channels - dv = {out_channels - dv} '
                             f'(out_channels={out_channels}, dv={dv}); accepted: an upsilon or '
                             f'dv that leaves a multiple of {groups} (e.g. dv='
                             f'{self._grouped_dv(out_channels, dv, groups, num_heads)})')

        self.num_heads = num_heads
        self.dk, self.dv = dk, dv
        self.dkh, self.dvh = dk // num_heads, dv // num_heads
        self.pos_enc = pos_enc
        self.attn_downsample = attn_downsample
        self.attn_impl = attn_impl
        self.max_size = to_2tuple_size(max_size, owner=owner)

        if out_channels > dv:
            self.conv = nn.Conv2d(in_channels, out_channels - dv, kernel_size, stride=stride,
                                  padding=padding, dilation=dilation, groups=groups, bias=bias)
        else:
            self.conv = None
        extra = 3 if pos_enc == 'coordconv' else 0
        self.qkv_conv = nn.Conv2d(in_channels + extra, 2 * dk + dv, 1, bias=False)
        self.attn_out = nn.Conv2d(dv, dv, 1, bias=False)
        if pos_enc == 'relative':
            mh, mw = self.max_size
            self.rel_height = nn.Parameter(torch.randn(2 * mh - 1, self.dkh) * self.dkh**-0.5)
            self.rel_width = nn.Parameter(torch.randn(2 * mw - 1, self.dkh) * self.dkh**-0.5)
        if stride > 1 or attn_downsample:
            self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @staticmethod
    def _grouped_dv(out_channels, dv, groups, num_heads):
        # the nearest dv >= the given one, multiple of num_heads, leaving a multiple of groups
        for cand in range(dv, out_channels + 1, num_heads):
            if (out_channels - cand) % groups == 0:
                return cand
        return out_channels

    def _attn_hw(self, h: int, w: int):
        if self.stride > 1 or self.attn_downsample:
            return -(-h // 2), -(-w // 2)
        return h, w

    def flops(self, input_hw) -> int:
        """Multiply-adds of one image on the explicit path: the conv branch, the 1x1 q/k/v and
        output convs, the logits against keys and the relative tables (all ``2L - 1`` offsets,
        as the appendix's ``rel_to_abs``) and the weighted sum; pooling and the bilinear
        upsampling are not counted."""
        h, w = to_hw(input_hw)
        ho, wo = self.out_hw((h, w))
        macs = 0
        if self.conv is not None:
            k = self.kernel_size
            macs += self.in_channels // self.groups * self.conv.out_channels * k * k * ho * wo
        ha, wa = self._attn_hw(h, w)
        L, Nh = ha * wa, self.num_heads
        macs += self.qkv_conv.in_channels * (2 * self.dk + self.dv) * L
        macs += Nh * L * L * (self.dkh + self.dvh)
        if self.pos_enc == 'relative':
            macs += Nh * L * self.dkh * (2 * wa - 1 + 2 * ha - 1)
        macs += self.dv * self.dv * L
        return macs

    def _attention(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        if self.pos_enc == 'sine':
            x = x + sine_position_2d(x.shape[1], h, w, x.device, x.dtype)
        elif self.pos_enc == 'coordconv':
            x = torch.cat([x, coord_channels(n, h, w, x.device, x.dtype)], 1)
        # q and k in the weights' precision under autocast (see outside_autocast); the
        # attention runs in fp32 anyway, so only this 1x1 conv changes precision
        qkv = outside_autocast(self.qkv_conv, x, self.qkv_conv.weight.dtype).flatten(2)
        q, k, v = torch.split(qkv, [self.dk, self.dk, self.dv], dim=1)
        Nh = self.num_heads
        q = q.reshape(n, Nh, self.dkh, h * w).transpose(2, 3) * self.dkh**-0.5
        k = k.reshape(n, Nh, self.dkh, h * w).transpose(2, 3)
        v = v.reshape(n, Nh, self.dvh, h * w).transpose(2, 3)
        rel_h = rel_w = None
        if self.pos_enc == 'relative':
            rel_h = slice_relative_table(self.rel_height, h, self.beyond_max,
                                         name='AAConv2d rel_height')
            rel_w = slice_relative_table(self.rel_width, w, self.beyond_max,
                                         name='AAConv2d rel_width')
        out = relative_attention(q, k, v, rel_h, rel_w, (h, w), impl=self.attn_impl,
                                 return_probs=self.record_attention,
                                 owner='AAConv2d')                 # (n, Nh, HW, dvh)
        if self.record_attention:
            out, probs = out
            self._record(probs=probs, size=(h, w))
        out = out.transpose(2, 3).reshape(n, self.dv, h, w)        # combine_heads_2d
        return self.attn_out(out)

    def forward(self, x: Tensor) -> Tensor:
        parts = []
        if self.conv is not None:
            parts.append(self.conv(x))
        a_in = self.pool(x) if (self.stride > 1 or self.attn_downsample) else x
        attn = self._attention(a_in)
        out_hw = parts[0].shape[-2:] if parts else \
            (-(-x.shape[-2] // self.stride), -(-x.shape[-1] // self.stride))
        if attn.shape[-2:] != out_hw:
            attn = F.interpolate(attn, size=out_hw, mode='bilinear', align_corners=False)
        parts.append(attn)
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, stride={self.stride}, dk={self.dk}, '
                f'dv={self.dv}, num_heads={self.num_heads}, pos_enc={self.pos_enc!r}, '
                f'max_size={self.max_size}, attn_impl={self.attn_impl!r}')
