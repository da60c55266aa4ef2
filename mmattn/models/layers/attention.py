"""Exact 2-D relative-position attention, shared by LESA and AA.

For a query at ``(y_i, x_i)`` and a key at ``(y_j, x_j)`` on an ``H x W`` grid (raster order,
``j = y_j * W + x_j``) the logit is

    l_ij = a_c * q_i . k_j + a_r * (q_i . r_W[x_j - x_i] + q_i . r_H[y_j - y_i])   (+ const_i)

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

  * ``'chunked'`` (default): a custom autograd Function that walks over blocks of queries (and
    heads), builds each block's QW/QH from its queries and the tables, its logits, softmax and
    output, and saves only its inputs and output; backward recomputes each block
    (FlashAttention-style recomputation, written with batched matmuls so that it runs on CPU,
    where FlexAttention has no backward). On CPU a block fits in L2, so the elementwise
    passes cost little next to the matmuls.
  * ``'sdpa'``: the relative logits ride as extra query/key dims of
    ``F.scaled_dot_product_attention``: ``q_aug = [q, QH, QW]``, ``k_aug = [k, onehot(y_j),
    onehot(x_j)]`` (v zero-padded where the kernel needs equal head dims). Exact too, but the
    logit matmul grows from ``d`` to ``d + H + W`` and QH/QW are materialised.

  A BatchNorm over the logits becomes a per-head, per-term scale, folded into ``q`` (content
  term) and into the tables (relative term). In training mode its batch statistics come from
  moments, without the logits: ``sum_bij q_i.k_j = sum_b (sum_i q_i).(sum_j k_j)``,
  ``sum_bij (q_i.k_j)^2 = sum_b <Q_b^T Q_b, K_b^T K_b>_F``, and for the relative term, per
  query, ``sum_j (QW[i,x_j] + QH[i,y_j])^2 = H sum_x QW^2 + W sum_y QH^2 + 2 (sum_x QW)(sum_y
  QH)`` with ``sum_x QW[i, x] = q_i . S_W[x_i]`` and ``sum_x QW[i, x]^2 = q_i^T M_W[x_i] q_i``
  (``S``, ``M``: window sums of ``r`` and ``r r^T`` over the offsets row ``x_i`` sees). Running
  statistics update as ``nn.BatchNorm2d`` would (momentum or cumulative average, unbiased
  variance); gradients flow through the statistics as in the explicit BatchNorm.

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

from .position import rel_to_abs, relative_index_1d

ATTN_IMPLS = ('auto', 'explicit', 'fused')
FUSED_KERNELS = ('auto', 'chunked', 'sdpa')

_DEFAULT_IMPL = 'auto'
# Logits per block (CPU: per intra-op thread) of the chunked kernel. CPU: 2^17 fp32 = 512 KiB,
# inside a core's L2, so the elementwise passes (bias add, softmax, softmax backward) run from
# cache; measured faster than larger blocks despite more Python iterations. CUDA: large blocks,
# few kernel launches.
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


def autocast_off(device_type: str):
    """``torch.autocast(device_type, enabled=False)``, or nothing for a device autocast does
    not know (``meta``: shape-only runs, how large models are built before loading)."""
    try:
        return torch.autocast(device_type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


def norm_in_own_dtype(norm: nn.Module, x: Tensor) -> Tensor:
    """``norm(x)`` in the norm's parameter dtype, cast back to ``x``'s: the logits run in at
    least fp32 while a model moved with ``.to(torch.bfloat16)`` keeps bf16 norms (CPU
    BatchNorm refuses mixed dtypes)."""
    ref = next((t for t in (*norm.parameters(), *norm.buffers()) if t.is_floating_point()),
               None)
    if ref is None or ref.dtype == x.dtype:
        return norm(x)
    return norm(x.to(ref.dtype)).to(x.dtype)


def outside_autocast(fn, x: Tensor, dtype: torch.dtype) -> Tensor:
    """``fn(x.to(dtype))`` with autocast off when autocast is on for ``x``'s device, else ``fn(x)``.

    For the projections that form attention logits (pass the weights' dtype): at large
    activations the logits reach ~1e4, and a bfloat16/float16 rounding of q or k (2^-9 relative)
    moves them by tens, which changes the softmax and every gradient through it (issue 16:
    relative errors above 1 against float64). Without autocast nothing changes (no copy).
    """
    try:
        on = torch.is_autocast_enabled(x.device.type)
    except RuntimeError:  # meta and other devices autocast does not know
        on = False
    if not on:
        return fn(x)
    with torch.autocast(x.device.type, enabled=False):
        return fn(x.to(dtype))


# ----------------------------------------------------------------------------------------------
# relative logits
# ----------------------------------------------------------------------------------------------
def _abs_tables(rel: Tensor, length: int) -> Tensor:
    # (L_query, L_key, d) with [a, b] = rel[b - a + L - 1]: the relative table laid out by
    # absolute positions (tiny: L^2 d), so QW needs one batched matmul and no (L, 2L-1) buffer
    return rel[..., relative_index_1d(length, rel.device), :]


def relative_query_logits(q: Tensor, rel_h: Tensor, rel_w: Tensor, size: Tuple[int, int],
                          method: str = 'gather') -> Tuple[Tensor, Tensor]:
    """Query-side relative tables ``QH (B, N, HW, H)`` and ``QW (B, N, HW, W)``.

    ``QW[..., i, x] = q_i . rel_w[x - x_i + W - 1]`` and
    ``QH[..., i, y] = q_i . rel_h[y - y_i + H - 1]`` (BoTNet's relative_logits_1d without the
    final expansion to ``HW x HW``).

    Args:
        q: ``(B, N, H*W, d)``.
        rel_h, rel_w: ``(2H-1, d)`` and ``(2W-1, d)`` (already sliced to this size), or with a
            leading head dim.
        size: ``(H, W)``.
        method: ``'gather'`` (tables laid out by absolute position, then one batched matmul; the
            fused path's, lighter) or ``'rel_to_abs'`` (logits against all ``2L-1`` offsets, then
            the pad/reshape/slice of :func:`rel_to_abs`, as the official LESA / BoTNet / AA code;
            the explicit reference's). Identical values.
    """
    B, N, L, d = q.shape
    H, W = size
    if H * W != L:
        raise ValueError(f'relative_query_logits: size {size} does not match {L} positions')
    for name, rel in (('rel_h', rel_h), ('rel_w', rel_w)):
        if not (rel.dim() == 2 or (rel.dim() == 3 and rel.shape[0] == N)):
            raise ValueError(f'{name} of shape {tuple(rel.shape)}: expected (2L-1, {d}) or '
                             f'({N}, 2L-1, {d})')
    q4 = q.reshape(B, N, H, W, d)
    if method == 'gather':
        per_head = rel_w.dim() == 3
        tw, th = _abs_tables(rel_w, W), _abs_tables(rel_h, H)       # (.., W, W, d), (.., H, H, d)
        if per_head:
            qw = torch.einsum('bnyxd,nxkd->bnyxk', q4, tw)
            qh = torch.einsum('bnyxd,nykd->bnyxk', q4, th)
        else:
            qw = torch.einsum('bnyxd,xkd->bnyxk', q4, tw)
            qh = torch.einsum('bnyxd,ykd->bnyxk', q4, th)
        return qh.reshape(B, N, L, H), qw.reshape(B, N, L, W)
    if method != 'rel_to_abs':
        raise ValueError(f"method={method!r} is not one of ('gather', 'rel_to_abs')")
    tw = rel_w.t() if rel_w.dim() == 2 else rel_w.transpose(1, 2)[:, None]
    th = rel_h.t() if rel_h.dim() == 2 else rel_h.transpose(1, 2)[:, None]
    qw = rel_to_abs(q4 @ tw)                                     # (B, N, H, W(x_i), W(x))
    qh = rel_to_abs(q4.transpose(2, 3) @ th)                     # (B, N, W, H(y_i), H(y))
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
    dtype = q.dtype
    # Half-precision logits overflow (|l| > 65504 -> inf -> NaN) and round in exp: as the fused
    # kernel, run logits and softmax in (at least) fp32 with autocast off, and cast back.
    work = torch.promote_types(dtype, torch.float32)
    q, k, v = q.to(work), k.to(work), v.to(work)
    if rel_h is not None:
        rel_h, rel_w = rel_h.to(work), rel_w.to(work)
    with autocast_off(q.device.type):
        out, probs = _explicit_relative_attention(q, k, v, rel_h, rel_w, size, logit_norm)
    out = out.to(dtype)
    return (out, probs.to(dtype)) if return_probs else out


def _explicit_relative_attention(q, k, v, rel_h, rel_w, size, logit_norm):
    B, N, L, _ = q.shape
    terms = [q @ k.transpose(-1, -2)]
    if rel_h is not None:
        qh, qw = relative_query_logits(q, rel_h, rel_w, size, method='rel_to_abs')
        terms.append(expand_relative_logits(qh, qw, size))
    if logit_norm is not None:
        T = len(terms)
        logits = norm_in_own_dtype(logit_norm, torch.cat(terms, dim=1)).view(B, T, N, L, L).sum(1)
    else:
        logits = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    probs = logits.softmax(dim=-1)
    return probs @ v, probs


# ----------------------------------------------------------------------------------------------
# BatchNorm over logits -> per-head, per-term scale
# ----------------------------------------------------------------------------------------------
def _per_head(rel: Tensor, num_heads: int) -> Tensor:
    return rel.expand(num_heads, *rel.shape) if rel.dim() == 2 else rel


def _relative_row_moments(q: Tensor, rel: Tensor, length: int, axis: int):
    """For each query ``i`` and its coordinate ``c_i`` along ``axis`` (2: rows, 3: columns of
    ``q (B, N, H, W, d)``): ``sum_c q_i . r[c - c_i]`` and ``sum_c (q_i . r[c - c_i])^2``.

    Via the window sum ``S[c_i] = sum_c r[c - c_i]`` and the window second moment
    ``M[c_i] = sum_c r r^T``: ``q_i . S[c_i]`` and ``q_i^T M[c_i] q_i``; all tensors are q-sized
    or table-sized.
    """
    table = _abs_tables(rel, length)                                 # (N, L_i, L_key, d)
    S = table.sum(2)                                                 # (N, L_i, d)
    M = torch.einsum('nikd,nike->nide', table, table)                # (N, L_i, d, d)
    if axis == 3:
        first = torch.einsum('bnyxd,nxd->bnyx', q, S)
        qM = torch.einsum('bnyxd,nxde->bnyxe', q, M)
    else:
        first = torch.einsum('bnyxd,nyd->bnyx', q, S)
        qM = torch.einsum('bnyxd,nyde->bnyxe', q, M)
    return first, (qM * q).sum(-1)


def logit_moments(q: Tensor, k: Tensor, rel_h: Optional[Tensor], rel_w: Optional[Tensor],
                  size: Optional[Tuple[int, int]]) -> Tuple[Tensor, Tensor, int]:
    """Per-channel mean and biased variance of the stacked logits over ``(B, HW, HW)``.

    Returns ``mean, var`` of shape ``(T * N,)`` in float64 (channel ``t * N + n``) and the count
    ``B * HW * HW``, without forming any logits (see the module docstring). Reductions along
    one axis run in the input dtype; what follows runs in float64 because
    ``E[x^2] - E[x]^2`` cancels.
    """
    # statistics in at least fp32, as autocast runs BatchNorm: Gram sums over HW would
    # overflow or round in half precision
    if q.dtype in (torch.float16, torch.bfloat16):
        q = q.float()
    with autocast_off(q.device.type):
        return _logit_moments(q, k, rel_h, rel_w, size)


def _logit_moments(q, k, rel_h, rel_w, size):
    B, N, L, d = q.shape
    n = B * L * L
    k = k.to(q.dtype)
    rel_h = rel_h.to(q.dtype) if rel_h is not None else None
    rel_w = rel_w.to(q.dtype) if rel_w is not None else None
    s_c = (q.sum(2).double() * k.sum(2).double()).sum(-1).sum(0)
    gram_q = (q.transpose(-1, -2) @ q).double()
    gram_k = (k.transpose(-1, -2) @ k).double()
    ss_c = (gram_q * gram_k).sum((-1, -2)).sum(0)
    sums, sqs = [s_c], [ss_c]
    if rel_h is not None:
        H, W = size
        q4 = q.reshape(B, N, H, W, d)
        a, a2 = (t.double() for t in _relative_row_moments(q4, _per_head(rel_w, N), W, 3))
        b, b2 = (t.double() for t in _relative_row_moments(q4, _per_head(rel_h, N), H, 2))
        # row i: sum_j (QW[i, x_j] + QH[i, y_j]) = H sum_x QW + W sum_y QH, and the square
        sums.append((H * a + W * b).sum((0, 2, 3)))
        sqs.append((H * a2 + W * b2 + 2 * a * b).sum((0, 2, 3)))
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
                          rel_h: Optional[Tensor], rel_w: Optional[Tensor],
                          size: Optional[Tuple[int, int]]) -> Tensor:
    """The per-channel factor ``weight / sqrt(var + eps)`` that ``bn`` applies to the logits.

    The shift (``bias - mean * factor``) is constant along each softmax row and is dropped.
    Mirrors ``_BatchNorm.forward``: batch statistics when training or when running stats are
    not tracked; running stats updated in place (with the unbiased variance) when training
    and tracking.
    """
    T = 1 if rel_h is None else 2
    N = q.shape[1]
    if bn.num_features != T * N:
        raise ValueError(f'logit norm has {bn.num_features} channels, expected {T} terms x '
                         f'{N} heads = {T * N}')
    use_batch = bn.training or (bn.running_mean is None and bn.running_var is None)
    if use_batch:
        mean, var, n = logit_moments(q, k, rel_h, rel_w, size)
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
    """``(heads, rows)`` per block: about ``block_elements`` logits per intra-op thread (on CPU
    a block of all threads' share stays in their L2 caches), query rows first, then as many
    heads as fit (a batched matmul over heads splits across threads without synchronising
    inside one small GEMM)."""
    par = torch.get_num_threads() if device.type == 'cpu' else 1
    rows = min(L, max(1, block_elements // (par * L)))
    heads = min(G, max(1, block_elements * par // (rows * L)))
    return heads, rows


def _block_indices(s: int, t: int, H: int, W: int, device):
    # table columns of the block's queries: [c, x] -> x - x_i + W - 1, [c, y] -> y - y_i + H - 1
    pos = torch.arange(s, t, device=device)
    iw = torch.arange(W, device=device)[None, :] - (pos % W)[:, None] + (W - 1)
    ih = torch.arange(H, device=device)[None, :] - (pos // W)[:, None] + (H - 1)
    return ih, iw


def _block_probs(qc, kt, qr, th_t, tw_t, ih, iw, H, W):
    # softmax(q k^T + QH[., y_j] + QW[., x_j]) of one block, in place: (gb, c, L); the block's
    # QW/QH come from its queries and the relative tables (BoTNet's relative logits, gathered)
    gb, c, _ = qc.shape
    p = torch.bmm(qc, kt)
    qw = torch.bmm(qr, tw_t).gather(-1, iw.expand(gb, c, W))
    qh = torch.bmm(qr, th_t).gather(-1, ih.expand(gb, c, H))
    p.view(gb, c, H, W).add_(qh[..., None]).add_(qw[..., None, :])
    return torch.softmax(p, -1, out=p)


class _ChunkedRelAttention(torch.autograd.Function):
    """``softmax(qc k^T + QH[:, y_j] + QW[:, x_j]) v`` block by block, with
    ``QW[i, x] = qr_i . rel_w[x - x_i + W - 1]`` and ``QH`` alike.

    Inputs are flattened to ``G = B * N`` rows: qc, qr, k ``(G, L, d)`` (``qc`` for the content
    term, ``qr`` for the relative one: the same tensor unless a logit norm scales the terms
    differently), v ``(G, L, e)``, rel_h ``(G, 2H-1, d)``, rel_w ``(G, 2W-1, d)``. Saves only
    the inputs and the output: no ``(HW)^2`` tensor and no ``HW x (H + W)`` tables are kept;
    backward recomputes each block.
    """

    @staticmethod
    def forward(ctx, qc, qr, k, v, rel_h, rel_w, H, W, block_elements):
        # the blocks run in the inputs' dtype (fp32 for half inputs), whatever autocast says
        with autocast_off(qc.device.type):
            return _ChunkedRelAttention._forward(ctx, qc, qr, k, v, rel_h, rel_w, H, W,
                                                 block_elements)

    @staticmethod
    def _forward(ctx, qc, qr, k, v, rel_h, rel_w, H, W, block_elements):
        G, L, _ = qc.shape
        gb, rows = _block_shape(G, L, block_elements, qc.device)
        out = qc.new_empty(G, L, v.shape[-1])
        kt = k.transpose(1, 2).contiguous()
        th_t, tw_t = rel_h.transpose(1, 2), rel_w.transpose(1, 2)
        for s in range(0, L, rows):
            t = min(L, s + rows)
            ih, iw = _block_indices(s, t, H, W, qc.device)
            for g0 in range(0, G, gb):
                g1 = min(G, g0 + gb)
                p = _block_probs(qc[g0:g1, s:t], kt[g0:g1], qr[g0:g1, s:t], th_t[g0:g1],
                                 tw_t[g0:g1], ih, iw, H, W)
                out[g0:g1, s:t] = torch.bmm(p, v[g0:g1])
        ctx.save_for_backward(qc, qr, k, v, rel_h, rel_w, out)
        ctx.HW = (H, W)
        ctx.block = (gb, rows)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        with autocast_off(dout.device.type):
            return _ChunkedRelAttention._backward(ctx, dout)

    @staticmethod
    def _backward(ctx, dout):
        qc, qr, k, v, rel_h, rel_w, out = ctx.saved_tensors
        H, W = ctx.HW
        gb, rows = ctx.block
        G, L, _ = qc.shape
        dout = dout.to(out.dtype).contiguous()
        # delta_i = sum_j P_ij dP_ij = dO_i . O_i (softmax backward as in FlashAttention-2)
        delta = (dout * out).sum(-1, keepdim=True)
        dqc, dqr = torch.empty_like(qc), torch.empty_like(qr)
        dk, dv = torch.zeros_like(k), torch.zeros_like(v)
        drel_h, drel_w = torch.zeros_like(rel_h), torch.zeros_like(rel_w)
        kt = k.transpose(1, 2).contiguous()
        vt = v.transpose(1, 2).contiguous()
        th_t, tw_t = rel_h.transpose(1, 2), rel_w.transpose(1, 2)
        for s in range(0, L, rows):
            t = min(L, s + rows)
            c = t - s
            ih, iw = _block_indices(s, t, H, W, qc.device)
            for g0 in range(0, G, gb):
                g1 = min(G, g0 + gb)
                n = g1 - g0
                q_r = qr[g0:g1, s:t]
                p = _block_probs(qc[g0:g1, s:t], kt[g0:g1], q_r, th_t[g0:g1], tw_t[g0:g1], ih,
                                 iw, H, W)
                do = dout[g0:g1, s:t]
                dv[g0:g1].baddbmm_(p.transpose(1, 2), do)
                ds = torch.bmm(do, vt[g0:g1])
                ds.sub_(delta[g0:g1, s:t]).mul_(p)
                dqc[g0:g1, s:t] = torch.bmm(ds, k[g0:g1])
                dk[g0:g1].baddbmm_(ds.transpose(1, 2), qc[g0:g1, s:t])
                d4 = ds.view(n, c, H, W)
                # each table column appears once per query row: scatter, not scatter-add
                grw = ds.new_zeros(n, c, 2 * W - 1).scatter_(-1, iw.expand(n, c, W), d4.sum(2))
                grh = ds.new_zeros(n, c, 2 * H - 1).scatter_(-1, ih.expand(n, c, H), d4.sum(3))
                dqr[g0:g1, s:t] = torch.bmm(grw, rel_w[g0:g1]).baddbmm_(grh, rel_h[g0:g1])
                drel_w[g0:g1].baddbmm_(grw.transpose(1, 2), q_r)
                drel_h[g0:g1].baddbmm_(grh.transpose(1, 2), q_r)
        return dqc, dqr, dk, dv, drel_h, drel_w, None, None, None


def chunked_relative_attention(qc: Tensor, qr: Tensor, k: Tensor, v: Tensor, rel_h: Tensor,
                               rel_w: Tensor, size: Tuple[int, int],
                               block_elements: Optional[int] = None) -> Tensor:
    """Fused kernel ``'chunked'``: q/k/v ``(B, N, L, *)``, tables ``(2L-1, d)`` or per head
    ``(N, 2L-1, d)``; returns ``(B, N, L, e)``."""
    B, N, L, d = qc.shape
    e = v.shape[-1]
    H, W = size
    dtype = qc.dtype
    # Half-precision logits would overflow/round in exp; the blocks are small, so run fp32.
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    G = B * N
    if block_elements is None:
        block_elements = BLOCK_ELEMENTS.get(qc.device.type, BLOCK_ELEMENTS['cuda'])

    def flat(x, c):
        return x.to(work).reshape(G, L, c).contiguous()

    def heads(rel):
        rel = _per_head(rel, N).to(work)
        return rel.expand(B, *rel.shape).reshape(G, *rel.shape[1:]).contiguous()

    out = _ChunkedRelAttention.apply(flat(qc, d), flat(qr, d), flat(k, d), flat(v, e),
                                     heads(rel_h), heads(rel_w), H, W, int(block_elements))
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
    if q.shape[0] == 0:
        # empty batch: nothing to attend (and no statistics to update); the kernels' blocks
        # of B * N rows would have size 0
        return (v * 0).to(q.dtype)
    path = resolve_path(impl, logit_norm, owner=owner)
    if path == 'explicit':
        return explicit_relative_attention(q, k, v, rel_h, rel_w, size, logit_norm)

    N = q.shape[1]
    qc = q
    if logit_norm is not None:
        # a BatchNorm on the logits = per-head, per-term scales: on q for the content term, on
        # the tables for the relative one (the shifts cancel in the softmax)
        scale = batchnorm_logit_scale(logit_norm, q, k, rel_h, rel_w, size).view(-1, N)
        qc = q * scale[0].view(1, N, 1, 1)
        if rel_h is not None:
            rel_h = _per_head(rel_h, N) * scale[1].view(N, 1, 1)
            rel_w = _per_head(rel_w, N) * scale[1].view(N, 1, 1)
    if rel_h is None:
        return sdpa_attention(qc, k, v)
    if kernel == 'sdpa':
        qh, qw = relative_query_logits(q, rel_h, rel_w, size)
        return sdpa_relative_attention(qc, k, v, qh, qw, size)
    return chunked_relative_attention(qc, q, k, v, rel_h, rel_w, size, block_elements)
