"""LESA: Locally Enhanced Self-Attention (Yang et al., 2021), as a 3x3-conv replacement.

``output = gate * binary + unary`` (LESA Eq. 5-7):

- unary ``m = BN(Conv1x1(GroupedConv3x3(x)))`` (Eq. 6; groups = heads; optionally a DCNv1);
- binary: multi-head self-attention with 2-D relative position (Eq. 1), no ``1/sqrt(d)``: a
  BatchNorm over the stacked logits (``bn_similarity``, one channel per head and term) takes
  its place, and a BatchNorm on the output (``bn_output``), as in the official code;
- gate ``sigmoid(BN(Conv1x1(ReLU(BN(Conv1x1(ReLU([m, binary])))))))`` (Eq. 7). The paper's text
  writes a leading BN (``BN -> relu -> fc1 -> BN -> relu -> fc2 -> BN``); the official module
  and its checkpoints have none (``reasoning = [ReLU, Conv, BN, ReLU]``, ``projection = [Conv,
  BN]``), and we follow the checkpoints.

Submodule and parameter names are the official ones (``qkv_transform``, ``bn_qkv``,
``bn_similarity``, ``bn_output``, ``x_transform.0/1``, ``bn_x``, ``reasoning.1/2``,
``projection.0/1``, ``rel_height``/``rel_width`` or ``relative``) with the official shapes
(``qkv_transform`` stays a Conv1d), so converting an official checkpoint is a prefix rename.
Norms are built from ``norm_cfg`` (BatchNorm2d/SyncBN have the same parameters as the official
BatchNorm1d).

Differences from the official module, each keeping the official numbers at its fixed size:

- any input size: position tables are built for ``max_size`` and centre-sliced (exact inside
  the maximum, ``beyond_max`` outside; see :mod:`.position`);
- the detection encoding runs on the fused attention path of :mod:`.attention` (no ``(HW)^2``
  logits; batch statistics of ``bn_similarity`` from moments), which the official code could
  not (it needed gradient checkpointing and one image per GPU at 1024);
- stride 2 pools with ``ceil_mode=True`` so odd sizes give ``ceil(H / 2)`` like the 3x3 conv it
  replaces; for even sizes this is the official ``AvgPool2d(2)``.
"""
import math
from typing import Optional, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from .attention import (autocast_off, check_attn_impl, norm_in_own_dtype, relative_attention,
                        resolve_path)
from .base import AttnOperator, check_choice, check_int, register_operator, to_hw
from .position import check_beyond_max, slice_relative_table, to_2tuple_size

LESA_FUSIONS = ('dynamic', 'static', 'none')
LESA_UNARIES = ('conv', 'dcn')
LESA_PE_TYPES = ('detection_qr', 'classification')


def build_norm(norm_cfg: dict, num_features: int) -> nn.Module:
    if norm_cfg.get('type') == 'GN' and num_features % norm_cfg.get('num_groups', 1):
        # a GroupNorm backbone (num_groups=32) also norms the 2 * num_heads stacked logits:
        # as many groups as divide them
        norm_cfg = dict(norm_cfg, num_groups=math.gcd(norm_cfg['num_groups'], num_features))
    return build_norm_layer(norm_cfg, num_features)[1]


@register_operator
class LESA(AttnOperator):
    """Locally Enhanced Self-Attention, a drop-in for a bottleneck's 3x3 conv (+ its norm).

    Args:
        in_channels, out_channels: bottleneck width in and out (the official code uses in = out).
        kernel_size: must be 3 (the unary conv is the 3x3 it replaces).
        stride: 1, or 2 for attention at the input size followed by 2x2 average pooling
            (``ceil_mode``: output ``ceil(H / 2)``).
        padding, dilation: the unary 3x3 conv keeps ``dilation`` and pads by ``dilation`` (so a
            dilated ResNet stage keeps its size); ``padding`` is accepted for the conv signature
            and ignored (global attention has no padding).
        groups: must be 1 (the unary grouping is ``num_heads``, as officially).
        bias: must be False.
        num_heads: heads of the binary term and groups of the unary conv (official: 8). Per head
            q = k = ``out_channels / num_heads / 2`` channels, v = ``out_channels / num_heads``.
        fusion: ``'dynamic'`` (official LESA), ``'static'`` (unary + binary, the paper's "static
            LESA"), ``'none'`` (binary only: the paper's SA baseline).
        unary: ``'conv'`` or ``'dcn'`` (mmcv ``DeformConv2dPack``, DCNv1, deform_groups=1,
            offsets zero-initialised; the official Dconv detection models).
        pe_type: ``'detection_qr'`` (BoTNet-style 2-D relative logits, query term only; tables
            ``rel_height``/``rel_width`` ``(2 * max - 1, q_dim)``) or ``'classification'``
            (axial-deeplab style q/k/v embeddings over 1-D offsets of the flattened raster index;
            table ``relative`` ``(2 q_dim + v_dim, 2 * max_H * max_W - 1)``). Only
            ``'detection_qr'`` is translation-equivariant in 2-D and can use the fused path.
        max_size: the block's *output* feature size (int or (H, W)) at the reference input
            size, so that one value serves a whole stage: the official fixed sizes (detection
            at 1024: 64 for stage 3 and 32 for stage 4; classification at 224: 14). A stride-2
            block attends at its input, so its tables are built for ``stride * max_size`` (the
            official layer4[0] tables at 1024 are sized 64).
        beyond_max: ``'interpolate'`` or ``'error'`` for larger inputs (see :mod:`.position`).
        norm_cfg: config of every internal norm (default ``dict(type='BN')``; inside
            ``AttnResNet`` the backbone's ``norm_cfg``; a GroupNorm takes as many groups as
            divide the logit norm's ``2 * num_heads`` channels).
        attn_impl: ``'auto'`` | ``'explicit'`` | ``'fused'`` | None (module default).
        init_cfg: mmengine ``init_cfg`` (the default init is the official one).

    Attention maps (:func:`~mmattn.models.layers.base.record_attention`): ``probs`` ``(B,
    heads, HW, HW)``, the binary term's softmax (row = query, keys in raster order, at the
    input size ``size`` = (H, W), before any stride-2 pooling; explicit path), and with a
    unary term ``unary`` and ``binary`` ``(B, C, H, W)`` (the terms of ``gate * binary +
    unary``) and, for ``fusion='dynamic'``, ``gate`` (the paper's omega, same shape).
    """

    attention_maps = ('probs', 'unary', 'binary', 'gate')

    norm_inside = True

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]] = 3,
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding=1,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 groups: int = 1,
                 bias: bool = False,
                 *,
                 num_heads: int = 8,
                 fusion: str = 'dynamic',
                 unary: str = 'conv',
                 pe_type: str = 'detection_qr',
                 max_size: Union[int, Tuple[int, int]] = 64,
                 beyond_max: str = 'interpolate',
                 norm_cfg: Optional[dict] = None,
                 attn_impl: Optional[str] = None,
                 init_cfg=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init_cfg=init_cfg)
        owner = type(self).__name__
        self.fusion = check_choice(owner, 'fusion', fusion, LESA_FUSIONS)
        self.unary = check_choice(owner, 'unary', unary, LESA_UNARIES)
        self.pe_type = check_choice(owner, 'pe_type', pe_type, LESA_PE_TYPES)
        self.beyond_max = check_beyond_max(beyond_max, owner)
        if attn_impl is not None:
            check_attn_impl(attn_impl, owner)
        self.attn_impl = attn_impl
        self.check_accepted('kernel_size', (3, ))
        self.check_accepted('stride', (1, 2))
        if self.groups != 1:
            raise ValueError(f'{owner}: groups={groups!r} is not supported (accepted: 1; the '
                             f'unary conv is grouped by num_heads)')
        self.check_accepted('bias', (False, ), bias)
        num_heads = check_int(owner, 'num_heads', num_heads, 1)
        if out_channels % (2 * num_heads) != 0:
            raise ValueError(f'{owner}: num_heads={num_heads} must divide out_channels='
                             f'{out_channels} into an even number of channels per head '
                             f'(q = k = out_channels / num_heads / 2)')
        if in_channels % num_heads != 0:
            raise ValueError(f'{owner}: num_heads={num_heads} must divide in_channels='
                             f'{in_channels} (unary conv groups)')
        norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        stride, dilation = self.stride, self.dilation

        self.groups = num_heads  # official attribute name for the head count
        self.num_heads = num_heads
        self.qk_planes = out_channels // num_heads // 2
        self.v_planes = out_channels // num_heads
        self.max_size = to_2tuple_size(max_size, owner=owner)
        # attention runs before the stride-2 pooling, at stride x the output size
        self.table_size = (self.max_size[0] * self.stride, self.max_size[1] * self.stride)

        # binary term
        self.qkv_transform = nn.Conv1d(in_channels, 2 * out_channels, 1, bias=False)
        self.bn_qkv = build_norm(norm_cfg, 2 * out_channels)
        if pe_type == 'detection_qr':
            self.bn_similarity = build_norm(norm_cfg, 2 * num_heads)
            self.bn_output = build_norm(norm_cfg, out_channels)
            scale = self.qk_planes**-0.5
            mh, mw = self.table_size
            self.rel_height = nn.Parameter(torch.randn(2 * mh - 1, self.qk_planes) * scale)
            self.rel_width = nn.Parameter(torch.randn(2 * mw - 1, self.qk_planes) * scale)
        else:
            self.bn_similarity = build_norm(norm_cfg, 3 * num_heads)
            self.bn_output = build_norm(norm_cfg, 2 * out_channels)
            k = self.table_size[0] * self.table_size[1]
            self.relative = nn.Parameter(
                torch.randn(2 * self.qk_planes + self.v_planes, 2 * k - 1) * self.v_planes**-0.5)

        # unary term
        if fusion != 'none':
            if unary == 'dcn':
                from mmcv.ops import DeformConv2dPack  # compiled ops: import only when asked
                grouped = DeformConv2dPack(in_channels, out_channels, 3, padding=dilation,
                                           dilation=dilation, groups=num_heads,
                                           deform_groups=1, bias=False)
            else:
                grouped = nn.Conv2d(in_channels, out_channels, 3, padding=dilation,
                                    dilation=dilation, groups=num_heads, bias=False)
            self.x_transform = nn.Sequential(grouped,
                                             nn.Conv2d(out_channels, out_channels, 1, bias=False))
            self.bn_x = build_norm(norm_cfg, out_channels)
        if fusion == 'dynamic':
            # official df_channel_shrink=[2], df_kernel_size=[1, 1], df_group=[1, 1]
            self.reasoning = nn.Sequential(
                nn.ReLU(inplace=True),
                nn.Conv2d(2 * out_channels, out_channels, 1, bias=False),
                build_norm(norm_cfg, out_channels), nn.ReLU(inplace=True))
            self.projection = nn.Sequential(
                nn.Conv2d(out_channels, out_channels, 1, bias=False),
                build_norm(norm_cfg, out_channels))
        if stride > 1:
            self.pooling = nn.AvgPool2d(stride, stride=stride, ceil_mode=True)
        nn.init.normal_(self.qkv_transform.weight, 0, in_channels**-0.5)

    # ------------------------------------------------------------------------------------------
    def _norm(self, norm: nn.Module, x: Tensor) -> Tensor:
        # official BatchNorm1d over (N, C, L) == 2-d norm over (N, C, L, 1). Input and incoming
        # gradient are made contiguous (no-ops unless the input map was channels_last): torch
        # 2.13's CPU BatchNorm backward returns a wrong input gradient when one of them is
        # contiguous and the other channels_last-strided, which (N, C, L, 1) views of
        # channels_last maps are (issue 16; repro in tests/test_reliability/
        # test_rel_channels_last.py; the CUDA SyncBN analogue was pytorch/pytorch#64100)
        y = norm(x.unsqueeze(-1).contiguous())
        if y.requires_grad:
            y.register_hook(lambda g: None if g is None else g.contiguous())
        return y.squeeze(-1)

    def _qkv(self, x: Tensor):
        n, _, h, w = x.shape
        qkv = self._norm(self.bn_qkv, self.qkv_transform(x.flatten(2)))
        qkv = qkv.view(n, self.num_heads, 2 * self.qk_planes + self.v_planes, h * w)
        # official layout: head-major, [q, k, v] inside each head
        return torch.split(qkv, [self.qk_planes, self.qk_planes, self.v_planes], dim=2)

    def _binary_detection(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        q, k, v = (t.transpose(2, 3) for t in self._qkv(x))       # (n, G, HW, c)
        rel_h = slice_relative_table(self.rel_height, h, self.beyond_max, name='LESA rel_height')
        rel_w = slice_relative_table(self.rel_width, w, self.beyond_max, name='LESA rel_width')
        out = relative_attention(q, k, v, rel_h, rel_w, (h, w), logit_norm=self.bn_similarity,
                                 impl=self.attn_impl, return_probs=self.record_attention,
                                 owner='LESA')
        if self.record_attention:
            out, probs = out
            self._record(probs=probs, size=(h, w))
        out = out.transpose(2, 3).reshape(n, self.out_channels, h * w)
        return self._norm(self.bn_output, out).view(n, self.out_channels, h, w)

    def _binary_classification(self, x: Tensor) -> Tensor:
        resolve_path(self.attn_impl, self.bn_similarity, owner='LESA',
                     extra_blocker="pe_type='classification' has 1-D offsets over the flattened "
                     'index with key and value embeddings (no low-rank form)')
        n, _, h, w = x.shape
        L = h * w
        G, cq, cv = self.num_heads, self.qk_planes, self.v_planes
        q, k, v = self._qkv(x)                                      # (n, G, c, L)
        table = slice_relative_table(self.relative, L, self.beyond_max, dim=1,
                                     name='LESA relative')
        # emb[c, i, j] = relative[c, (i - j) + L - 1] (official flatten_index: key - query
        # with the first index playing "key"); used as q_i.e[i,j], (k_j.e[j,i]) and e[i,j] for v
        i = torch.arange(L, device=x.device)
        emb = table[:, i[:, None] - i[None, :] + L - 1]
        q_emb, k_emb, v_emb = torch.split(emb, [cq, cq, cv], dim=0)
        # logits and softmax in (at least) fp32 with autocast off: half-precision logits
        # overflow (|l| > 65504 -> inf -> NaN); the result is cast back to q's dtype
        dtype = q.dtype
        work = torch.promote_types(dtype, torch.float32)
        with autocast_off(x.device.type):
            q, k, v = q.to(work), k.to(work), v.to(work)
            q_emb, k_emb, v_emb = q_emb.to(work), k_emb.to(work), v_emb.to(work)
            qk = torch.einsum('bgci,bgcj->bgij', q, k)
            qr = torch.einsum('bgci,cij->bgij', q, q_emb)
            kr = torch.einsum('bgcj,cji->bgij', k, k_emb)
            logits = norm_in_own_dtype(self.bn_similarity, torch.cat([qk, qr, kr], dim=1))
            attn = logits.view(n, 3, G, L, L).sum(1).softmax(dim=-1)
            if self.record_attention:
                self._record(probs=attn, size=(h, w))
            sv = torch.einsum('bgij,bgcj->bgci', attn, v).to(dtype)
            sve = torch.einsum('bgij,cij->bgci', attn, v_emb).to(dtype)
        # official: cat on the last dim then view as 2C channels -> channel 2c is sv_c and
        # 2c + 1 is sve_c; bn_output over those, then the pair is summed
        stacked = torch.stack([sv, sve], dim=3).reshape(n, 2 * self.out_channels, L)
        out = self._norm(self.bn_output, stacked).view(n, self.out_channels, 2, L).sum(2)
        return out.view(n, self.out_channels, h, w)

    def forward(self, x: Tensor) -> Tensor:
        if self.pe_type == 'detection_qr':
            binary = self._binary_detection(x)
        else:
            binary = self._binary_classification(x)
        if self.fusion == 'none':
            out = binary
        else:
            unary = self.bn_x(self.x_transform(x))
            if self.fusion == 'dynamic':
                gate = torch.sigmoid(self.projection(self.reasoning(torch.cat([unary, binary],
                                                                              dim=1))))
                out = gate * binary + unary
            else:
                gate = None
                out = binary + unary
            if self.record_attention:
                self.attention_record.update(unary=unary.detach(), binary=binary.detach())
                if gate is not None:
                    self.attention_record['gate'] = gate.detach()
        if self.stride > 1:
            out = self.pooling(out)
        return out

    def last_norm_names(self) -> Tuple[str, ...]:
        # out = gate * bn_output(.) + bn_x(.): both zero gives a zero output
        return ('bn_output', ) if self.fusion == 'none' else ('bn_output', 'bn_x')

    def flops(self, input_hw) -> int:
        """Multiply-adds of one image on the explicit path: the 1x1 q/k/v conv, the logits
        against keys and the relative tables (all ``2L - 1`` offsets, as the official
        ``rel_to_abs``), the weighted sum(s), and the unary and gate convs (a DCN unary as a
        conv plus its offset conv). Attention and the unary run at the input size; the
        stride-2 pooling is not counted."""
        h, w = to_hw(input_hw)
        L, C, G = h * w, self.out_channels, self.num_heads
        cq, cv = self.qk_planes, self.v_planes
        macs = self.in_channels * 2 * C * L
        if self.pe_type == 'detection_qr':
            macs += G * L * (cq * (2 * w - 1) + cq * (2 * h - 1) + L * (cq + cv))
        else:  # q.k, q.r, k.r logits; value and value-embedding sums
            macs += G * L * L * (3 * cq + 2 * cv)
        if self.fusion != 'none':
            macs += (self.in_channels // G * C * 9 + C * C) * L
            if self.unary == 'dcn':
                macs += self.in_channels * 18 * 9 * L  # conv_offset: 2 x 3 x 3 offsets
        if self.fusion == 'dynamic':
            macs += (2 * C * C + C * C) * L
        return macs

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, stride={self.stride}, '
                f'num_heads={self.num_heads}, fusion={self.fusion!r}, unary={self.unary!r}, '
                f'pe_type={self.pe_type!r}, max_size={self.max_size}, '
                f'attn_impl={self.attn_impl!r}')
