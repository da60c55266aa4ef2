"""Exact 2-D relative-position attention, shared by LESA and AA.

For a query at ``(y_i, x_i)`` and a key at ``(y_j, x_j)`` on an ``H x W`` grid (raster order,
``j = y_j * W + x_j``) the logit is

    l_ij = a_c * q_i . k_j + a_r * (q_i . r_W[x_j - x_i] + q_i . r_H[y_j - y_i]) (+ per-row constants)

(AA Eq. 3-4 with ``a_c = a_r = 1``; LESA's detection encoding puts a BatchNorm2d over the two
stacked terms per head, which is a per-head, per-term affine map ``a * l + b``; the ``b`` are
constant along a softmax row and drop out). Output ``o_i = sum_j softmax_j(l_ij) v_j``.

Two implementations of the same numbers:

- ``explicit``: the reference. Materialises the ``(HW)^2`` logits (content term, relative term
  through :func:`~mmattn.models.layers.position.rel_to_abs`, the logit norm module applied to the
  stacked terms exactly as the official LESA code does), softmax, weighted sum.
- ``fused``: never keeps an ``(HW)^2`` tensor in the autograd graph. The relative term
  factorises through the query-side tables ``QW[i, x] = q_i . r_W[x - x_i]`` (``HW x W``) and
  ``QH[i, y] = q_i . r_H[y - y_i]`` (``HW x H``): ``l_ij = q_i . k_j + QW[i, x_j] + QH[i, y_j]``.
  Two kernels compute that:

  * ``'chunked'`` (default): a custom autograd Function that walks over blocks of queries,
    builds each block's logits, softmax and output, and saves only the inputs and the row
    log-sum-exp; backward recomputes each block (flash-attention style recomputation, written
    with plain batched matmuls so it runs on CPU, where FlexAttention has no backward).
  * ``'sdpa'``: the relative logits ride as extra query/key dims of
    ``F.scaled_dot_product_attention``: ``q_aug = [q, QH, QW]``, ``k_aug = [k, onehot(y_j),
    onehot(x_j)]`` (v zero-padded where the kernel needs equal head dims). Exact too, but the
    logit matmul grows from ``d`` to ``d + H + W``.

  A BatchNorm over the logits becomes a per-head, per-term scale folded into ``q`` and the
  tables. In training mode the batch statistics are computed from moments, without the logits:
  ``sum_bij q_i.k_j = sum_b (sum_i q_i).(sum_j k_j)``, ``sum_bij (q_i.k_j)^2 = sum_b
  <Q_b^T Q_b, K_b^T K_b>_F``, and for the relative term ``sum_j (QW[i,x_j] + QH[i,y_j])^2 =
  H sum_x QW^2 + W sum_y QH^2 + 2 (sum_x QW)(sum_y QH)``. Running statistics update as
  ``nn.BatchNorm2d`` would (momentum or cumulative average, unbiased variance); gradients flow
  through the statistics as in the explicit BatchNorm.

Which path runs is chosen by ``impl`` (``'auto'`` | ``'explicit'`` | ``'fused'``), falling back
to the module default (:func:`set_default_attn_impl`, :func:`default_attn_impl`). ``'auto'``
takes the fused path unless the logit norm is something the moment trick does not cover
(not a BatchNorm, or a SyncBatchNorm in training mode in a multi-process group, whose
statistics would need a cross-process reduction); the choice is logged at DEBUG level.
"""
import contextlib
import logging
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .position import rel_to_abs

ATTN_IMPLS = ('auto', 'explicit', 'fused')
FUSED_KERNELS = ('auto', 'chunked', 'sdpa')

_DEFAULT_IMPL = 'auto'
# Logits per head and block of the chunked kernel. CPU: 2^17 fp32 = 512 KiB, inside a core's L2,
# so the elementwise passes (bias add, softmax, softmax backward) run from cache; measured faster
# than larger blocks despite more Python iterations. CUDA: large blocks, few kernel launches.
BLOCK_ELEMENTS = {'cpu': 1 << 17, 'cuda': 1 << 26}


def check_attn_impl(impl: str, owner: str = 'attention') -> str:
    if impl not in ATTN_IMPLS:
        raise ValueError(f'{owner}: attn_impl={impl!r} is not one of {ATTN_IMPLS}')
    return impl


def set_default_attn_impl(impl: str) -> None:
    """Module-level switch used when an operator's ``attn_impl`` is None."""
    global _DEFAULT_IMPL
    _DEFAULT_IMPL = check_attn_impl(impl, 'set_default_attn_impl')


def get_default_attn_impl() -> str:
    return _DEFAULT_IMPL


@contextlib.contextmanager
def default_attn_impl(impl: str):
    """``with default_attn_impl('explicit'): ...`` switches the default temporarily."""
    old = _DEFAULT_IMPL
    set_default_attn_impl(impl)
    try:
        yield
    finally:
        set_default_attn_impl(old)


# ----------------------------------------------------------------------------------------------
# relative logits
# ----------------------------------------------------------------------------------------------
def _table_for(rel: Tensor, num_heads: int) -> Tensor:
    # (R, d) shared across heads, or (num_heads, R, d) per head; returned as (..., d, R) so that
    # q (B, N, a, b, d) @ it broadcasts.
    if rel.dim() == 2:
        return rel.t()
    if rel.dim() == 3 and rel.shape[0] == num_heads:
        return rel.transpose(1, 2)[:, None]
    raise ValueError(f'relative table of shape {tuple(rel.shape)}: expected (2L-1, d) or '
                     f'({num_heads}, 2L-1, d)')


def relative_query_logits(q: Tensor, rel_h: Tensor, rel_w: Tensor,
                          size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Query-side relative tables ``QH (B, N, HW, H)`` and ``QW (B, N, HW, W)``.

    ``QW[..., i, x] = q_i . rel_w[x - x_i + W - 1]``, ``QH[..., i, y] = q_i . rel_h[y - y_i + H - 1]``
    (BoTNet's relative_logits_1d without the final expansion to ``HW x HW``).

    Args:
        q: ``(B, N, H*W, d)``.
        rel_h, rel_w: ``(2H-1, d)`` and ``(2W-1, d)`` (already sliced to this size), or with a
            leading head dim.
        size: ``(H, W)``.
    """
    B, N, L, d = q.shape
    H, W = size
    if H * W != L:
        raise ValueError(f'relative_query_logits: size {size} does not match {L} positions')
    q4 = q.reshape(B, N, H, W, d)
    qw = rel_to_abs(q4 @ _table_for(rel_w, N))                   # (B, N, H, W(x_i), W(x))
    qh = rel_to_abs(q4.transpose(2, 3) @ _table_for(rel_h, N))   # (B, N, W, H(y_i), H(y))
    qh = qh.transpose(2, 3)                                      # (B, N, H(y_i), W(x_i), H)
    return qh.reshape(B, N, L, H), qw.reshape(B, N, L, W)


def expand_relative_logits(qh: Tensor, qw: Tensor, size: Tuple[int, int]) -> Tensor:
    """``(B, N, HW, HW)`` logits ``QH[i, y_j] + QW[i, x_j]`` (keys in raster order)."""
    H, W = size
    *lead, L, _ = qh.shape
    return (qh[..., :, None] + qw[..., None, :]).reshape(*lead, L, H * W)


# ----------------------------------------------------------------------------------------------
# explicit reference
# ----------------------------------------------------------------------------------------------
def explicit_relative_attention(q: Tensor,
                                k: Tensor,
                                v: Tensor,
                                rel_h: Optional[Tensor] = None,
                                rel_w: Optional[Tensor] = None,
                                size: Optional[Tuple[int, int]] = None,
                                logit_norm: Optional[nn.Module] = None,
                                return_probs: bool = False):
    """Reference: materialises the ``(B, N, HW, HW)`` logits.

    With ``logit_norm`` the terms are stacked along channels as ``[content heads, relative
    heads]`` (channel ``t * N + n``, the official LESA layout ``cat([qk, qr], dim=1)``), normed,
    and summed over terms.
    """
    B, N, L, _ = q.shape
    terms = [q @ k.transpose(-1, -2)]
    if rel_h is not None:
        qh, qw = relative_query_logits(q, rel_h, rel_w, size)
        terms.append(expand_relative_logits(qh, qw, size))
    if logit_norm is not None:
        T = len(terms)
        logits = logit_norm(torch.cat(terms, dim=1)).view(B, T, N, L, L).sum(1)
    else:
        logits = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    probs = logits.softmax(dim=-1)
    out = probs @ v
    return (out, probs) if return_probs else out


# ----------------------------------------------------------------------------------------------
# BatchNorm over logits -> per-head, per-term scale
# ----------------------------------------------------------------------------------------------
def logit_moments(q: Tensor, k: Tensor, qh: Optional[Tensor], qw: Optional[Tensor],
                  size: Optional[Tuple[int, int]]) -> Tuple[Tensor, Tensor, int]:
    """Per-channel mean and biased variance of the stacked logits over ``(B, HW, HW)``.

    Returns ``mean, var`` of shape ``(T * N,)`` in float64 (channel ``t * N + n``) and the count
    ``B * HW * HW``. float64 because ``E[x^2] - E[x]^2`` cancels; the tensors involved are
    ``O(B N HW d^2)``, negligible next to the attention itself.
    """
    B, N, L, _ = q.shape
    qd, kd = q.double(), k.double()
    n = B * L * L
    s_c = (qd.sum(2) * kd.sum(2)).sum(-1).sum(0)
    gram_q = qd.transpose(-1, -2) @ qd
    gram_k = kd.transpose(-1, -2) @ kd
    ss_c = (gram_q * gram_k).sum((-1, -2)).sum(0)
    sums, sqs = [s_c], [ss_c]
    if qh is not None:
        H, W = size
        sh, sw = qh.double(), qw.double()
        a, b = sw.sum(-1), sh.sum(-1)                      # (B, N, L)
        sums.append((H * a + W * b).sum((0, 2)))
        sqs.append((H * sw.square().sum(-1) + W * sh.square().sum(-1) +
                    2 * a * b).sum((0, 2)))
    mean = torch.cat(sums) / n
    var = (torch.cat(sqs) / n - mean.square()).clamp_min(0)
    return mean, var, n


def _is_batchnorm(m) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


def fused_blocker(logit_norm: Optional[nn.Module]) -> Optional[str]:
    """Why the fused path cannot reproduce ``logit_norm`` (None when it can)."""
    if logit_norm is None:
        return None
    if not _is_batchnorm(logit_norm):
        return (f'logit norm {type(logit_norm).__name__} is not a BatchNorm; only BatchNorm '
                'statistics are computed from moments')
    if (isinstance(logit_norm, nn.SyncBatchNorm) and logit_norm.training
            and torch.distributed.is_available() and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1):
        return 'SyncBatchNorm over logits in training needs cross-process statistics'
    return None


def batchnorm_logit_scale(bn: nn.modules.batchnorm._BatchNorm, q: Tensor, k: Tensor,
                          qh: Optional[Tensor], qw: Optional[Tensor],
                          size: Optional[Tuple[int, int]]) -> Tensor:
    """The per-channel factor ``weight / sqrt(var + eps)`` that ``bn`` applies to the logits.

    The shift (``bias - mean * factor``) is constant along each softmax row and is dropped.
    Mirrors ``_BatchNorm.forward``: batch statistics when training or when running stats are
    not tracked; running stats updated in place (with the unbiased variance) when training
    and tracking.
    """
    T = 1 if qh is None else 2
    N = q.shape[1]
    if bn.num_features != T * N:
        raise ValueError(f'logit norm has {bn.num_features} channels, expected {T} terms x '
                         f'{N} heads = {T * N}')
    use_batch = bn.training or (bn.running_mean is None and bn.running_var is None)
    if use_batch:
        mean, var, n = logit_moments(q, k, qh, qw, size)
        if bn.training and bn.track_running_stats:
            with torch.no_grad():
                if bn.num_batches_tracked is not None:
                    bn.num_batches_tracked.add_(1)
                if bn.momentum is None:
                    factor = 1.0 / float(bn.num_batches_tracked)
                else:
                    factor = bn.momentum
                unbiased = var * (n / max(n - 1, 1))
                bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype),
                                                      alpha=factor)
                bn.running_var.mul_(1 - factor).add_(unbiased.to(bn.running_var.dtype),
                                                     alpha=factor)
        scale = torch.rsqrt(var + bn.eps).to(q.dtype)
    else:
        scale = torch.rsqrt(bn.running_var + bn.eps).to(q.dtype)
    if bn.affine:
        scale = scale * bn.weight.to(q.dtype)
    return scale


# ----------------------------------------------------------------------------------------------
# fused kernels
# ----------------------------------------------------------------------------------------------
def _block_shape(G: int, L: int, block_elements: int, device: torch.device) -> Tuple[int, int]:
    """``(heads, rows)`` per block: about ``block_elements`` logits per head-band, and on CPU one
    head per intra-op thread side by side (a batched matmul over heads splits across threads
    without synchronising inside one small GEMM; measured faster than one head at a time)."""
    par = torch.get_num_threads() if device.type == 'cpu' else 1
    if L * L <= block_elements:
        return min(G, max(par, block_elements // (L * L))), L
    return min(G, par), max(1, block_elements // L)


def _block_probs(q, kt, qh, qw, H, W):
    # logits of a block with the relative bias, softmax in place: (gb, c, L)
    gb, c, _ = q.shape
    p = torch.bmm(q, kt)
    p.view(gb, c, H, W).add_(qh[..., None]).add_(qw[..., None, :])
    return torch.softmax(p, -1, out=p)


class _ChunkedRelAttention(torch.autograd.Function):
    """``softmax(q k^T + QH[:, y_j] + QW[:, x_j]) v`` block by block.

    Inputs are flattened to ``G = B * N`` rows: q ``(G, L, d)``, k ``(G, L, d)``, v
    ``(G, L, e)``, qh ``(G, L, H)``, qw ``(G, L, W)``. Saves inputs and output; backward
    recomputes the probabilities of each block. On CPU blocks are sized to stay in cache, so
    the elementwise passes (bias add, softmax, its backward) cost little next to the matmuls.
    """

    @staticmethod
    def forward(ctx, q, k, v, qh, qw, H, W, block_elements):
        G, L, _ = q.shape
        gb, rows = _block_shape(G, L, block_elements, q.device)
        out = q.new_empty(G, L, v.shape[-1])
        kt = k.transpose(1, 2).contiguous()
        for g0 in range(0, G, gb):
            g1 = min(G, g0 + gb)
            for s in range(0, L, rows):
                t = min(L, s + rows)
                p = _block_probs(q[g0:g1, s:t], kt[g0:g1], qh[g0:g1, s:t], qw[g0:g1, s:t], H, W)
                out[g0:g1, s:t] = torch.bmm(p, v[g0:g1])
        ctx.save_for_backward(q, k, v, qh, qw, out)
        ctx.HW = (H, W)
        ctx.block = (gb, rows)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        q, k, v, qh, qw, out = ctx.saved_tensors
        H, W = ctx.HW
        gb, rows = ctx.block
        G, L, _ = q.shape
        dout = dout.contiguous()
        # delta_i = sum_j P_ij dP_ij = dO_i . O_i (softmax backward as in FlashAttention-2)
        delta = (dout * out).sum(-1, keepdim=True)
        dq = torch.empty_like(q)
        dk = torch.zeros_like(k)
        dv = torch.zeros_like(v)
        dqh = torch.empty_like(qh)
        dqw = torch.empty_like(qw)
        kt = k.transpose(1, 2).contiguous()
        vt = v.transpose(1, 2).contiguous()
        for g0 in range(0, G, gb):
            g1 = min(G, g0 + gb)
            for s in range(0, L, rows):
                t = min(L, s + rows)
                p = _block_probs(q[g0:g1, s:t], kt[g0:g1], qh[g0:g1, s:t], qw[g0:g1, s:t], H, W)
                do = dout[g0:g1, s:t]
                dv[g0:g1].baddbmm_(p.transpose(1, 2), do)
                ds = torch.bmm(do, vt[g0:g1])
                ds.sub_(delta[g0:g1, s:t]).mul_(p)
                dq[g0:g1, s:t] = torch.bmm(ds, k[g0:g1])
                dk[g0:g1].baddbmm_(ds.transpose(1, 2), q[g0:g1, s:t])
                d4 = ds.view(g1 - g0, t - s, H, W)
                dqh[g0:g1, s:t] = d4.sum(3)
                dqw[g0:g1, s:t] = d4.sum(2)
        return dq, dk, dv, dqh, dqw, None, None, None


def chunked_relative_attention(q: Tensor, k: Tensor, v: Tensor, qh: Tensor, qw: Tensor,
                               size: Tuple[int, int],
                               block_elements: Optional[int] = None) -> Tensor:
    """Fused kernel ``'chunked'``: ``(B, N, L, *)`` in, ``(B, N, L, e)`` out."""
    B, N, L, d = q.shape
    e = v.shape[-1]
    H, W = size
    dtype = q.dtype
    # Half-precision logits would overflow/round in exp; the blocks are small, so run fp32.
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    G = B * N
    if block_elements is None:
        block_elements = BLOCK_ELEMENTS.get(q.device.type, BLOCK_ELEMENTS['cuda'])

    def flat(x, c):
        return x.to(work).reshape(G, L, c).contiguous()

    out = _ChunkedRelAttention.apply(flat(q, d), flat(k, d), flat(v, e), flat(qh, H),
                                     flat(qw, W), H, W, int(block_elements))
    return out.view(B, N, L, e).to(dtype)


def _pad_last(x: Tensor, to: int) -> Tensor:
    return x if x.shape[-1] == to else F.pad(x, (0, to - x.shape[-1]))


def sdpa_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Plain ``softmax(q k^T) v`` (no scaling) through SDPA.

    The CPU flash kernel needs equal q/k/v head dims; zero-padding q and k together leaves
    ``q.k`` unchanged and zero-padded v columns are cut off, so pad to the larger dim there
    (otherwise SDPA falls back to the math path, which materialises the logits).
    """
    e = v.shape[-1]
    if q.device.type == 'cpu' and q.shape[-1] != e:
        m = max(q.shape[-1], e)
        out = F.scaled_dot_product_attention(_pad_last(q, m), _pad_last(k, m),
                                             _pad_last(v, m), scale=1.0)
        return out[..., :e]
    return F.scaled_dot_product_attention(q, k, v, scale=1.0)


def sdpa_relative_attention(q: Tensor, k: Tensor, v: Tensor, qh: Tensor, qw: Tensor,
                            size: Tuple[int, int]) -> Tensor:
    """Fused kernel ``'sdpa'``: relative logits as extra query/key dims (see module doc)."""
    B, N, L, _ = q.shape
    H, W = size
    pos = torch.arange(L, device=q.device)
    onehot = torch.cat([F.one_hot(pos // W, H), F.one_hot(pos % W, W)], -1).to(k.dtype)
    q_aug = torch.cat([q, qh, qw], -1)
    k_aug = torch.cat([k, onehot.expand(B, N, L, H + W)], -1)
    return sdpa_attention(q_aug, k_aug, v)


# ----------------------------------------------------------------------------------------------
# dispatcher
# ----------------------------------------------------------------------------------------------
def resolve_path(impl: Optional[str], logit_norm: Optional[nn.Module] = None,
                 extra_blocker: Optional[str] = None, owner: str = 'attention') -> str:
    """``'explicit'`` or ``'fused'`` for an ``impl`` and what the fused path would have to do."""
    impl = check_attn_impl(_DEFAULT_IMPL if impl is None else impl, owner)
    blocker = extra_blocker or fused_blocker(logit_norm)
    if impl == 'explicit':
        path, why = 'explicit', 'requested'
    elif impl == 'fused':
        if blocker:
            raise ValueError(f"{owner}: attn_impl='fused' cannot run here: {blocker}")
        path, why = 'fused', 'requested'
    else:
        path, why = ('explicit', blocker) if blocker else ('fused', 'auto')
    print_log(f'{owner}: {path} attention path ({why})', logger='current',
              level=logging.DEBUG)
    return path


def relative_attention(q: Tensor,
                       k: Tensor,
                       v: Tensor,
                       rel_h: Optional[Tensor] = None,
                       rel_w: Optional[Tensor] = None,
                       size: Optional[Tuple[int, int]] = None,
                       *,
                       logit_norm: Optional[nn.Module] = None,
                       impl: Optional[str] = None,
                       kernel: str = 'auto',
                       block_elements: Optional[int] = None,
                       owner: str = 'relative_attention') -> Tensor:
    """``softmax(norm([q k^T ; rel]) summed over terms) v`` without scaling of its own.

    Args:
        q, k: ``(B, N, HW, d)``; callers scale ``q`` themselves (AA: ``dkh ** -0.5``; LESA: none).
        v: ``(B, N, HW, e)``.
        rel_h, rel_w: relative tables sliced to ``size`` (``(2H-1, d)``, ``(2W-1, d)``, or per
            head), or None for no position term.
        size: ``(H, W)``, required with tables.
        logit_norm: optional norm over the stacked logits (``T * N`` channels, ``T`` = 1 without
            tables, 2 with), e.g. LESA's ``bn_similarity``.
        impl: ``'auto'`` | ``'explicit'`` | ``'fused'``; None takes the module default.
        kernel: fused kernel, ``'auto'`` (= ``'chunked'``) | ``'chunked'`` | ``'sdpa'``.
        block_elements: logits per block of the chunked kernel (default
            ``BLOCK_ELEMENTS[device type]``).
    """
    if kernel not in FUSED_KERNELS:
        raise ValueError(f'{owner}: kernel={kernel!r} is not one of {FUSED_KERNELS}')
    if (rel_h is None) != (rel_w is None):
        raise ValueError(f'{owner}: give both rel_h and rel_w or neither')
    if rel_h is not None and size is None:
        raise ValueError(f'{owner}: size=(H, W) is required with relative tables')
    path = resolve_path(impl, logit_norm, owner=owner)
    if path == 'explicit':
        return explicit_relative_attention(q, k, v, rel_h, rel_w, size, logit_norm)

    qh = qw = None
    if rel_h is not None:
        qh, qw = relative_query_logits(q, rel_h, rel_w, size)
    if logit_norm is not None:
        N = q.shape[1]
        scale = batchnorm_logit_scale(logit_norm, q, k, qh, qw, size).view(-1, N, 1, 1)
        q = q * scale[0]
        if qh is not None:
            qh, qw = qh * scale[1], qw * scale[1]
    if qh is None:
        return sdpa_attention(q, k, v)
    if kernel == 'sdpa':
        return sdpa_relative_attention(q, k, v, qh, qw, size)
    return chunked_relative_attention(q, k, v, qh, qw, size, block_elements)
