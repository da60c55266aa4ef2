"""LA-layer: local attention over a deformed, locality-constrained k x k window.

Paper: "Local Attention Layers for Vision Transformers" (withdrawn from ICLR 2023, published at
ICME 2023). No reference implementation exists (the linked repository holds none), so every
ambiguous line of Sec. 3.1 is an argument of :class:`LALayer` whose default is the reading that
reproduces the paper's Table 1 (parameters and FLOPs) and trains stably. The readings and the
reasons for them are in ``docs/dev/la_layer_readings.md``;
``tools/analysis_tools/la_layer_complexity.py`` checks the counts against Tables 1-2.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ...ops import ext_available, ext_status
from .attention import autocast_off, outside_autocast
from .attention.common import shape_only, tracing
from .base import AttnOperator, check_choice, check_int, check_number, register_operator, to_hw

# Accepted values of every string option; the first one is the default.
_CHOICES = dict(
    offset_mode=('sample', 'add'),
    offset_anchor=('query', 'key'),
    value_mode=('inside_softmax', 'outside'),
    offset_norm=('absmax', 'maxmin', 'tanh'),
    offset_norm_scope=('image', 'image_axis', 'position'),
    stride_mode=('pool_first', 'pool_after'),
)
# How the default reading samples keys and values: 'auto' (the compiled kernel where it runs,
# else grid_sample), 'grid_sample' (always), 'ext' (the compiled kernel, an error if not built).
SAMPLE_IMPLS = ('auto', 'grid_sample', 'ext')
EXT_OP = 'la_attn_fwd'
# Dimensions of the raw (B, 2, H, W) offset map that one normaliser scalar covers.
_SCOPE_DIMS = dict(image=(1, 2, 3), image_axis=(2, 3), position=(1, ))


def _autocast_on(device_type):
    """``torch.is_autocast_enabled`` for any device: ``meta`` and other devices autocast does not
    know (shape-only runs) have no autocast, rather than raising."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False


class _LocalAttention(torch.autograd.Function):
    """Per-head softmax attention over K given keys/values per query, memory-lean both ways.

    q (B, m, d, H, W); keys, values (B, m, d, K, H, W); bias None or (B, m, K, H, W), added to
    the scaled logits. Returns (B, m, d, H, W). Heads are processed one at a time, so the
    ``q * k~`` and ``a * v~`` products (and their gradients' products) exist for one head
    only; backward writes the key and value gradients in place into one buffer each, instead
    of autograd's per-head slices plus the stack that joins them (one k^2 C copy less at the
    backward peak: 319 MB instead of 380 MB for C=64, 56x56, batch 8). Saves q, keys, values
    and the attention.
    """

    @staticmethod
    def forward(ctx, q, keys, values, bias, scale):
        b, m, d, kk, h, w = keys.shape
        dtype = torch.promote_types(q.dtype, keys.dtype)
        out = keys.new_empty((b, m, d, h, w), dtype=dtype)
        attn = keys.new_empty((b, m, kk, h, w), dtype=dtype)
        for i in range(m):
            logits = (q[:, i].unsqueeze(2) * keys[:, i]).sum(1).mul_(scale)
            if bias is not None:
                logits += bias[:, i]
            attn[:, i] = logits.softmax(dim=1)
            out[:, i] = (attn[:, i].unsqueeze(1) * values[:, i]).sum(2)
        ctx.save_for_backward(q, keys, values, attn)
        ctx.scale = scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, keys, values, attn = ctx.saved_tensors
        need_q, need_k, need_v, need_bias = ctx.needs_input_grad[:4]
        grad_q = torch.empty_like(q) if need_q else None
        grad_k = torch.empty_like(keys) if need_k else None
        grad_v = torch.empty_like(values) if need_v else None
        grad_bias = torch.empty_like(attn) if need_bias else None
        for i in range(keys.shape[1]):
            g = grad_out[:, i].unsqueeze(2)  # (B, d, 1, H, W)
            a = attn[:, i]  # (B, K, H, W)
            if need_v:
                torch.mul(a.unsqueeze(1), g, out=grad_v[:, i])
            grad_a = (g * values[:, i]).sum(1)
            grad_logits = a * (grad_a - (grad_a * a).sum(1, keepdim=True))  # softmax'
            if need_bias:
                grad_bias[:, i] = grad_logits
            grad_logits = grad_logits.mul_(ctx.scale).unsqueeze(1)
            if need_k:
                torch.mul(grad_logits, q[:, i].unsqueeze(2), out=grad_k[:, i])
            if need_q:
                grad_q[:, i] = (grad_logits * keys[:, i]).sum(2)
        return grad_q, grad_k, grad_v, grad_bias, None


class _FusedLocalAttention(torch.autograd.Function):
    """The default reading's sampling and attention in one compiled CPU kernel
    (``mmattn/ops/csrc/la_attn.cpp``): qkv ``(B, H, W, 3, m, d)``, offsets ``(B, 2, H, W)``
    as (dx, dy); returns ``(B, H, W, m, d)``. Saves only its inputs (no sampled keys or
    values); backward recomputes the softmax."""

    @staticmethod
    def forward(ctx, qkv, offsets, kernel_size, dilation, scale):
        with autocast_off('cpu'):
            out = torch.ops.mmattn.la_attn_fwd(qkv, offsets, kernel_size, dilation, scale)
        ctx.save_for_backward(qkv, offsets)
        ctx.args = (kernel_size, dilation, scale)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        qkv, offsets = ctx.saved_tensors
        with autocast_off('cpu'):
            grad_qkv, grad_offsets = torch.ops.mmattn.la_attn_bwd(grad_out, qkv, offsets,
                                                                  *ctx.args)
        return grad_qkv, grad_offsets, None, None, None


def _local_attention_traced(q, keys, values, bias, scale):
    # _LocalAttention's forward with plain ops and the heads joined by stack: tracers record
    # this correctly (the TorchScript exporter wrote the Function's per-head writes into its
    # new_empty buffers as a wrong graph)
    outs = []
    for i in range(keys.shape[1]):
        logits = (q[:, i].unsqueeze(2) * keys[:, i]).sum(1) * scale
        if bias is not None:
            logits = logits + bias[:, i]
        outs.append((logits.softmax(dim=1).unsqueeze(1) * values[:, i]).sum(2))
    return torch.stack(outs, dim=1)


@register_operator
class LALayer(AttnOperator):
    r"""LA-layer: a drop-in replacement for a bottleneck's 3x3 conv.

    For every query pixel ``t`` the layer attends, per head, over ``k x k`` keys and values
    sampled bilinearly at deformed positions inside an ``L x L`` region around ``t``:

    .. math::
        y_t = \sum_{t'} \mathrm{softmax}_{t'}\big(q_t \cdot \tilde k_{t'} / \sqrt{d}\big)
        \tilde v_{t'}, \qquad \tilde k_{t'} = K(t + \delta_{t'} + \Delta p'_t)

    with 1x1 projections ``q, k, v`` (no bias, Eqs. 3-5, with the replaced conv's ``groups``),
    ``m`` heads of ``d = out_channels / m`` channels, window offsets
    ``delta in dilation * {-(k-1)/2..(k-1)/2}^2`` and one learned 2-D offset per pixel from an
    offset net (3x3 conv -> GELU -> 1x1 conv without bias, Fig. 2b) constrained by Eq. 7 to
    ``|dp'| <= l = (L - k) / 2`` (times ``dilation``). Positions outside the image read zeros,
    as a zero-padded conv or ``F.unfold`` does. With zero offsets the layer is exactly plain local
    (SASA-style) attention over the k x k window.

    Every ambiguous line of the paper is a keyword argument whose default is the reading that
    reproduces Table 1 and trains stably; the readings, the initialisation of the offset head
    and the memory per pixel are explained in ``docs/dev/la_layer_readings.md``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as for
            the 3x3 ``nn.Conv2d`` this replaces. ``kernel_size`` is the window k (odd),
            ``padding`` must be ``dilation * (k - 1) // 2`` (output size ``ceil(H / stride)``),
            ``bias`` adds a learned per-channel bias to the output.
        num_heads (int): m. Default 8 (paper, Sec. 4.1).
        region_size (int): L, the side of the region a deformed window stays in; ``L - k`` even.
            Default 7 (paper, Sec. 4.1), so ``l = 2`` for k = 3.
        offset_mode (str): ``'sample'`` (k and v sampled at the deformed positions) or
            ``'add'`` (fixed window, dp' as a learned position bias on the keys).
        offset_anchor (str): ``'query'`` (the query's offset moves its whole window) or
            ``'key'`` (each key moves by its own pixel's offset).
        value_mode (str): ``'inside_softmax'`` (Eq. 6 with deformed keys and values) or
            ``'outside'`` (Eq. 8's layout, ``v_t * sum softmax(q . k~) k~``).
        offset_norm (str): Eq. 7's bound: ``'absmax'``, ``'maxmin'`` (as printed, clamped) or
            ``'tanh'``.
        offset_norm_scope (str): what the max of Eq. 7 runs over: ``'image'``,
            ``'image_axis'`` or ``'position'``.
        stride_mode (str): stride-2 blocks: ``'pool_first'`` (pool 3x3/s, then attend) or
            ``'pool_after'``.
        offset_hidden_ratio (float): offset net width / in_channels. Default 0.25.
        sample_impl (str): how the default reading (``'sample'``, ``'query'``,
            ``'inside_softmax'``) samples and attends: ``'auto'`` (default) the compiled CPU
            kernel of ``mmattn/ops/csrc/la_attn.cpp`` (the same numbers without grid_sample)
            where it runs (CPU input, extension built, not tracing, attention not recorded),
            else grid_sample; ``'grid_sample'`` always grid_sample; ``'ext'`` the kernel, an
            error where it is not built or the input is not on CPU (tracing and recording still
            take grid_sample). The other readings always use grid_sample.
        offset_init_std (float, optional): std of the offset head's normal init. Default None:
            ``C_hid ** -0.5`` under absmax/maxmin, 0.01 under tanh (why: the readings note).
        eps (float): added to the normaliser's denominator. Default 1e-6.
        init_cfg (dict, optional): mmengine init config.

    Attention maps (:func:`~mmattn.models.layers.base.record_attention`): ``probs`` ``(B, m,
    k*k, H, W)``, each head's softmax over a query's k*k keys (window in row-major order);
    ``points`` ``(B, 2, k*k, H, W)``, where those keys are read, as ``(dx, dy)`` from the query
    in pixels of the attended map (``size`` = (H, W); the input pooled by ``input_stride``
    under ``'pool_first'``), deformed under ``offset_mode='sample'``, the fixed window under
    ``'add'``; ``region``: the half-side ``(L - 1) / 2 * dilation`` that bounds ``|dx|`` and
    ``|dy|`` (Eq. 7's constraint region).
    """

    attention_maps = ('probs', 'points', 'region')

    norm_inside = False

    def __init__(self,
                 in_channels,
                 out_channels,
                 kernel_size=3,
                 stride=1,
                 padding=1,
                 dilation=1,
                 groups=1,
                 bias=False,
                 *,
                 num_heads=8,
                 region_size=7,
                 offset_mode='sample',
                 offset_anchor='query',
                 value_mode='inside_softmax',
                 offset_norm='absmax',
                 offset_norm_scope='image',
                 offset_hidden_ratio=0.25,
                 stride_mode='pool_first',
                 offset_init_std=None,
                 eps=1e-6,
                 sample_impl='auto',
                 init_cfg=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init_cfg=init_cfg)
        kernel_size, stride, padding, dilation, groups = (
            self.kernel_size, self.stride, self.padding, self.dilation, self.groups)
        num_heads = check_int('LALayer', 'num_heads', num_heads, 1)
        region_size = check_int('LALayer', 'region_size', region_size, 1)
        if kernel_size % 2 == 0:
            raise ValueError(f'LALayer: kernel_size={kernel_size} must be odd (the window is '
                             'centred on its query)')
        if padding != dilation * (kernel_size - 1) // 2:
            raise ValueError(
                f'LALayer: padding={padding} must be dilation * (kernel_size - 1) // 2 = '
                f'{dilation * (kernel_size - 1) // 2} (the window is centred on its query, so '
                'the output size is that of a "same"-padded conv)')
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'LALayer: groups={groups} must divide in_channels={in_channels} '
                             f'and out_channels={out_channels}')
        if out_channels % num_heads:
            raise ValueError(f'LALayer: num_heads={num_heads} must divide '
                             f'out_channels={out_channels}')
        if region_size < kernel_size or (region_size - kernel_size) % 2:
            raise ValueError(f'LALayer: region_size={region_size} must be >= '
                             f'kernel_size={kernel_size} with region_size - kernel_size even '
                             '(the deformed window stays centred in the region)')
        options = dict(offset_mode=offset_mode, offset_anchor=offset_anchor,
                       value_mode=value_mode, offset_norm=offset_norm,
                       offset_norm_scope=offset_norm_scope, stride_mode=stride_mode)
        for name, value in options.items():
            check_choice('LALayer', name, value, _CHOICES[name])
        check_choice('LALayer', 'sample_impl', sample_impl, SAMPLE_IMPLS)
        if sample_impl == 'ext' and (offset_mode, offset_anchor, value_mode) != (
                'sample', 'query', 'inside_softmax'):
            raise ValueError(
                "LALayer: sample_impl='ext' needs the default reading (offset_mode='sample', "
                "offset_anchor='query', value_mode='inside_softmax'); got "
                f'offset_mode={offset_mode!r}, offset_anchor={offset_anchor!r}, '
                f"value_mode={value_mode!r} (use 'auto' or 'grid_sample')")
        check_number('LALayer', 'offset_hidden_ratio', offset_hidden_ratio, low=0,
                     low_open=True)
        if offset_init_std is not None:
            check_number('LALayer', 'offset_init_std', offset_init_std, low=0)
        if offset_init_std == 0 and offset_norm != 'tanh':
            raise ValueError(
                f'LALayer: offset_init_std=0 is not accepted with offset_norm={offset_norm!r}: '
                'a zero offset head makes the max normaliser divide ~0 by eps and its gradients '
                "explode; use a small std > 0 (or offset_norm='tanh')")
        check_number('LALayer', 'eps', eps, low=0, low_open=True)

        self.num_heads = num_heads
        self.head_channels = out_channels // num_heads
        self.region_size = region_size
        # l of Eq. 7 in pixels of the attended map.
        self.offset_bound = (region_size - kernel_size) // 2 * dilation
        self.scale = self.head_channels**-0.5
        self.eps = float(eps)
        for name, value in options.items():
            setattr(self, name, value)
        self.sample_impl = sample_impl
        hidden = math.ceil(in_channels * offset_hidden_ratio / groups) * groups
        self.offset_hidden_channels = hidden
        if offset_init_std is None:
            offset_init_std = 0.01 if offset_norm == 'tanh' else hidden**-0.5
        self.offset_init_std = float(offset_init_std)

        # Eqs. 3-5: 1x1 projections without bias.
        self.q_proj = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
        self.k_proj = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
        self.v_proj = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
        # Fig. 2b: 3x3 conv -> GELU -> 1x1 conv; the 1x1 has no bias so that no location is
        # shifted by default (Sec. 3.1).
        self.offset_conv = nn.Conv2d(in_channels, hidden, 3, padding=dilation,
                                     dilation=dilation, groups=groups)
        self.offset_act = nn.GELU()
        self.offset_head = nn.Conv2d(hidden, 2, 1, bias=False)
        if offset_mode == 'add':
            self.pos_proj = nn.Parameter(torch.empty(out_channels, 2))
        else:
            self.register_parameter('pos_proj', None)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter('bias', None)
        self._reset_offset_parameters()

    def _reset_offset_parameters(self):
        nn.init.normal_(self.offset_head.weight, std=self.offset_init_std)
        if self.pos_proj is not None:
            nn.init.normal_(self.pos_proj, std=0.02)

    def init_weights(self):
        """Applies ``init_cfg``, then re-initialises the offset head (once, unless pretrained).

        A parent's ``init_cfg`` (mmdet ResNet: Kaiming on every Conv2d) runs before this, and
        Kaiming fan-out on the 2-channel head would give it std ~1. A parent's ``Pretrained``
        init runs after this and wins.
        """
        first = not self.is_init
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if first and not any(cfg and cfg.get('type') == 'Pretrained' for cfg in cfgs):
            self._reset_offset_parameters()

    def extra_repr(self):
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, dilation={self.dilation}, groups={self.groups}, '
                f'num_heads={self.num_heads}, region_size={self.region_size}, '
                f'offset_mode={self.offset_mode!r}, offset_anchor={self.offset_anchor!r}, '
                f'value_mode={self.value_mode!r}, offset_norm={self.offset_norm!r}, '
                f'offset_norm_scope={self.offset_norm_scope!r}, '
                f'stride_mode={self.stride_mode!r}, bias={self.bias is not None}' +
                (f', sample_impl={self.sample_impl!r}' if self.sample_impl != 'auto' else ''))

    # ------------------------------------------------------------------ offsets
    def offsets(self, x):
        """Constrained offsets (B, 2, H, W) in pixels of ``x``: (dx, dy), ``|.| <= l*dilation``.

        ``x`` is the map that is attended (the pooled input under ``'pool_first'``).
        """
        # the offset net in the weights' precision under autocast: at large activations a
        # half-precision offset moves the samples enough to change the sharp softmax over
        # them, and its gradient (x loss scale) overflows float16 (issue 16)
        dp = outside_autocast(lambda t: self.offset_head(self.offset_act(self.offset_conv(t))),
                              x, self.offset_head.weight.dtype)
        # positions x + offset in at least fp32: bfloat16 holds 160 + 0.3 only to 1 px
        dp = dp.to(torch.promote_types(dp.dtype, torch.float32))
        if self.offset_norm == 'tanh':
            unit = torch.tanh(dp)
        else:
            dims = _SCOPE_DIMS[self.offset_norm_scope]
            if self.offset_norm == 'absmax':
                denom = dp.abs().amax(dims, keepdim=True)
                unit = dp / (denom + self.eps)
            else:  # 'maxmin': Eq. 7 as printed; max + |min| >= 0 always, but not >= max|dp|
                denom = dp.amax(dims, keepdim=True) + dp.amin(dims, keepdim=True).abs()
                unit = (dp / (denom + self.eps)).clamp(-1.0, 1.0)
        return unit * self.offset_bound

    def _displacements(self, offsets):
        """(B, 2, k*k, H, W): where each of a query's k*k samples sits relative to the query.

        Window position delta plus the anchor's offset; ``|.| <= (L - 1) / 2 * dilation``.
        """
        b, _, h, w = offsets.shape
        k, dil = self.kernel_size, self.dilation
        r = (k - 1) // 2
        steps = torch.arange(-r, r + 1, device=offsets.device, dtype=offsets.dtype) * dil
        # Row-major window order, as F.unfold: index ky * k + kx.
        window = torch.stack((steps.repeat(k), steps.repeat_interleave(k)))  # (2, k*k): dx, dy
        window = window.view(1, 2, k * k, 1, 1)
        if self.offset_anchor == 'query':
            anchor = offsets.unsqueeze(2)
        else:  # the offset of the key's own pixel; keys outside the image are not moved
            anchor = F.unfold(offsets, k, dilation=dil, padding=r * dil).view(b, 2, k * k, h, w)
        return window + anchor

    def _sample(self, maps, disp):
        """Bilinear samples of each (B, C, H, W) map at query + disp: (B, m, d, k*k, H, W)."""
        b, _, kk, h, w = disp.shape
        ys = torch.arange(h, device=disp.device, dtype=disp.dtype).view(1, 1, h, 1)
        xs = torch.arange(w, device=disp.device, dtype=disp.dtype).view(1, 1, 1, w)
        # align_corners=False: pixel centre p maps to (2p + 1) / size - 1 (valid for size 1).
        gx = (2 * (xs + disp[:, 0]) + 1) / w - 1
        gy = (2 * (ys + disp[:, 1]) + 1) / h - 1
        grid = torch.stack((gx, gy), dim=-1).view(b, kk * h, w, 2)
        # under autocast grid_sample runs in fp32 itself; without it, sample in the grid dtype
        # (at least fp32) and cast the samples back to the map's dtype
        cast = not _autocast_on(disp.device.type)
        return [
            F.grid_sample(m.to(grid.dtype) if cast else m, grid, mode='bilinear',
                          padding_mode='zeros', align_corners=False).to(
                              m.dtype if cast else grid.dtype).view(
                                  b, self.num_heads, self.head_channels, kk, h, w)
            for m in maps
        ]

    def _unfold(self, t):
        b, _, h, w = t.shape
        k, dil = self.kernel_size, self.dilation
        cols = F.unfold(t, k, dilation=dil, padding=(k - 1) // 2 * dil)
        return cols.view(b, self.num_heads, self.head_channels, k * k, h, w)

    # ------------------------------------------------------------------ forward
    def _pool(self, x):
        # Centred like the strided 3x3 conv it replaces: output size ceil(H / stride).
        return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)

    def _use_ext(self, x):
        """Whether this forward takes the compiled kernel (:class:`_FusedLocalAttention`)."""
        if self.sample_impl == 'grid_sample' or (self.offset_mode, self.offset_anchor,
                                                 self.value_mode) != ('sample', 'query',
                                                                      'inside_softmax'):
            return False
        if tracing() or self.record_attention:
            return False
        if self.sample_impl == 'ext':
            if not ext_available(EXT_OP):
                raise RuntimeError("LALayer: sample_impl='ext' but the compiled kernel is not "
                                   f'available: {ext_status()}')
            if x.device.type != 'cpu':
                raise ValueError("LALayer: sample_impl='ext' runs on CPU tensors; got "
                                 f"{x.device} (use 'auto' or 'grid_sample')")
            return True
        # shape-only runs (the FLOP counter) take the reference path, whose ops it counts
        return x.device.type == 'cpu' and not shape_only(x) and ext_available(EXT_OP)

    def _attend_ext(self, x):
        """The default reading through the compiled kernel: the same numbers as grid_sample
        and :class:`_LocalAttention` (see ``docs/dev/la_layer_readings.md``). q, k and v come
        from one channels-last projection (``groups=1``) and, under autocast, all three in
        the weights' precision."""
        b, cin, h, w = x.shape
        m, d, c = self.num_heads, self.head_channels, self.out_channels
        offsets = self.offsets(x)
        work = torch.float64 if offsets.dtype == torch.float64 else torch.float32
        projs = (self.q_proj, self.k_proj, self.v_proj)
        with autocast_off(x.device.type):
            xw = x.to(work)
            if self.groups == 1:  # one (HW x C_in) x (C_in x 3 C_out) GEMM, channels-last out
                weight = torch.cat([p.weight for p in projs]).to(work).view(3 * c, cin)
                qkv = F.linear(xw.permute(0, 2, 3, 1).contiguous(), weight)
                qkv = qkv.view(b, h, w, 3, m, d)
            else:
                qkv = torch.stack([
                    F.conv2d(xw, p.weight.to(work), groups=self.groups) for p in projs
                ], 1).view(b, 3, m, d, h, w).permute(0, 4, 5, 1, 2, 3).contiguous()
            out = _FusedLocalAttention.apply(qkv, offsets.to(work), self.kernel_size,
                                             self.dilation, self.scale)
        # as the grid_sample path: the weights' dtype under autocast, else x's
        dtype = self.q_proj.weight.dtype if _autocast_on(x.device.type) else x.dtype
        return out.view(b, h, w, c).permute(0, 3, 1, 2).contiguous().to(dtype)

    def _attend(self, x):
        if self._use_ext(x):
            return self._attend_ext(x)
        b, _, h, w = x.shape
        m, d = self.num_heads, self.head_channels
        # q and k in the weights' precision under autocast (see outside_autocast); v, whose
        # rounding the softmax does not amplify, stays in autocast's dtype
        q = outside_autocast(self.q_proj, x, self.q_proj.weight.dtype).view(b, m, d, h, w)
        k = outside_autocast(self.k_proj, x, self.k_proj.weight.dtype)
        v = self.v_proj(x)
        offsets = self.offsets(x)
        disp = self._displacements(offsets)
        sampled_maps = [k] if self.value_mode == 'outside' else [k, v]
        if self.offset_mode == 'sample':
            sampled = self._sample(sampled_maps, disp)
        else:  # 'add': the window is not deformed; dp' enters as a position bias on the keys
            sampled = [self._unfold(t) for t in sampled_maps]
        # the positions are sampled in (at least) fp32; the position terms use q's dtype
        disp = disp.to(q.dtype)
        bias = None
        if self.offset_mode == 'add':
            # q . (W disp) = (W^T q) . disp: no k*k*C tensor for the bias.
            q_pos = torch.einsum('mda,bmdhw->bmahw', self.pos_proj.view(m, d, 2), q)
            bias = torch.einsum('bmahw,bakhw->bmkhw', q_pos, disp) * self.scale
        if self.record_attention:
            self._record_maps(q, sampled[0], bias, disp, offsets, (h, w))
        if self.value_mode == 'inside_softmax':
            attend = _local_attention_traced if tracing() else _LocalAttention.apply
            out = attend(q, sampled[0], sampled[1], bias, self.scale)
        else:
            out = self._attend_value_outside(q, sampled[0], v.view(b, m, d, h, w), bias, disp)
        return out.reshape(b, m * d, h, w)

    def _record_maps(self, q, keys, bias, disp, offsets, size):
        # the softmax _LocalAttention computes inside (it returns only the output), written
        # out once: (B, m, k*k, H, W)
        logits = (q.unsqueeze(3) * keys).sum(2).float() * self.scale
        if bias is not None:
            logits = logits + bias.float()
        # where the keys are read: deformed ('sample') or the fixed window ('add')
        points = disp if self.offset_mode == 'sample' else \
            self._displacements(torch.zeros_like(offsets))
        self._record(probs=logits.softmax(dim=2), points=points.float(), size=size,
                     region=(self.region_size - 1) // 2 * self.dilation,
                     input_stride=self.stride if self.stride_mode == 'pool_first' else 1)

    def _attend_value_outside(self, q, keys, v, bias, disp):
        """``y_t = v_t * sum_t' a_t' k~_t'`` (Eq. 8's layout), plain autograd, head by head."""
        outs = []
        for i, (q_i, k_i) in enumerate(zip(q.unbind(1), keys.unbind(1))):
            logits = (q_i.unsqueeze(2) * k_i).sum(1) * self.scale
            if bias is not None:
                logits = logits + bias[:, i]
            attn = logits.softmax(dim=1).unsqueeze(1)
            pooled = (attn * k_i).sum(2)
            if self.pos_proj is not None:  # the position bias is part of k~
                pos = self.pos_proj.view(self.num_heads, self.head_channels, 2)[i]
                pooled = pooled + torch.einsum('da,bahw->bdhw', pos, (attn * disp).sum(2))
            outs.append(v[:, i] * pooled)
        return torch.stack(outs, dim=1)

    def forward(self, x):
        if self.stride > 1 and self.stride_mode == 'pool_first':
            x = self._pool(x)
        out = self._attend(x)
        if self.stride > 1 and self.stride_mode == 'pool_after':
            out = self._pool(out)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    # ------------------------------------------------------------------ complexity
    def flops_breakdown(self, h, w):
        """Multiply-adds per image for an ``h x w`` input, by part (paper's MAC convention).

        ``'qkv'``, ``'offset_net'`` (3x3 and 1x1 convs), ``'attention'`` (``q . k~`` and the
        weighted sum, k*k*C_out each per pixel, plus the position bias under ``'add'``) make
        ``'total'``, the figure comparable with Tables 1-2, which count convolutions and
        products as fvcore does. ``'sampling'`` (4 MACs per bilinear sample and channel) and
        ``'pooling'`` are listed apart and not in ``'total'``; biases and softmax are not
        counted.
        """
        s, k2 = self.stride, self.kernel_size**2
        ho, wo = -(-h // s), -(-w // s)
        n = ho * wo if self.stride_mode == 'pool_first' else h * w
        cin, cout, g, hid = self.in_channels, self.out_channels, self.groups, \
            self.offset_hidden_channels
        parts = dict(
            qkv=3 * cin * cout // g * n,
            offset_net=(9 * cin * hid // g + hid * 2) * n,
            attention=2 * k2 * cout * n,
        )
        if self.offset_mode == 'add':
            parts['attention'] += (2 * cout + 2 * k2 * self.num_heads) * n
            if self.value_mode == 'outside':
                parts['attention'] += (2 * k2 * self.num_heads + 2 * cout) * n
        if self.value_mode == 'outside':
            parts['attention'] += cout * n  # v_t * pooled key
        parts['total'] = sum(parts.values())
        sampled_maps = 1 if self.value_mode == 'outside' else 2
        parts['sampling'] = (4 * k2 * cout * n * sampled_maps
                             if self.offset_mode == 'sample' else 0)
        pooled_channels = cin if self.stride_mode == 'pool_first' else cout
        parts['pooling'] = 9 * pooled_channels * ho * wo if s > 1 else 0
        return parts

    def flops(self, input_hw, w=None):
        """Multiply-adds for one input image of size ``input_hw`` (H, W), paper convention
        (see :meth:`flops_breakdown`). ``flops(h, w)`` is accepted too."""
        h, w = to_hw(input_hw if w is None else (input_hw, w))
        return self.flops_breakdown(h, w)['total']
