"""Fused kernel ``'flex'`` (the default on CUDA where FlexAttention runs): PyTorch's
FlexAttention with the relative term as a score modification.

The logit ``l_ij = qc_i . k_j + QH[i, y_j] + QW[i, x_j]`` (package docstring) is FlexAttention's
``score = qc_i . k_j`` (``scale=1``: callers scale ``q`` themselves) plus the ``score_mod``
``QH[b, h, i, j // W] + QW[b, h, i, j % W]``, where the query-side tables ``QH (B, N, HW, H)``
and ``QW (B, N, HW, W)`` come from ``qr`` and the relative tables
(:func:`~.reference.relative_query_logits`). LESA's BatchNorm logit norm needs no kernel of
its own: it is folded into per-head scales on ``qc`` and on the tables by the caller
(:func:`~.dispatch.relative_attention`), so no Triton kernel is needed for it.

Gradients: ``QH``/``QW`` are captured tensors of the ``score_mod``; FlexAttention (torch >= 2.6,
"learnable biases") differentiates captured tensors that require grad (its backward
accumulates their gradients), and autograd carries those on to ``qr`` and the tables through
the einsum that built them. No custom autograd Function is involved.

Runs:

- CUDA: ``torch.compile`` of the call (score_mod and flex_attention), compiled once per
  process and cached (:func:`_compiled_core`), ``fullgraph=True`` so that a failure to
  compile is an error instead of a silent fallback to FlexAttention's unfused path (which
  materialises the ``(HW)^2`` scores). ``dynamic=None`` (automatic dynamic shapes): the first
  size compiles with static shapes (the fastest kernels); the first call at another size
  recompiles once with symbolic sequence lengths and table sizes (``W`` is read from
  ``QW``'s shape inside the compiled code, never a Python constant), and later sizes reuse
  that. With ``dynamic=False`` every image size of multi-scale training would recompile.
  Head dims, dtype and grad mode make separate graphs (an AA-R50 has three head-dim layouts,
  each with and without grad), and
  dynamo's per-function recompile limit (8 by default; past it ``fullgraph`` fails hard) is
  raised to :data:`RECOMPILE_LIMIT` around the call. The tables ``QH``/``QW`` are computed
  in eager before the call and enter the compiled graph as inputs.
- CPU (and other devices): FlexAttention's eager path (the same score_mod, scores
  materialised), forward only: torch has no FlexAttention backward on CPU, so this raises
  where a gradient is needed. Tests check the forward and the score_mod on CPU
  (:func:`relative_score_mod` evaluated over index grids, with gradients through autograd).

The work dtype is fp32 for half inputs (as the other kernels: logits reach ~1e4) and the
input's otherwise; head dims below :data:`MIN_HEAD_DIM` are zero-padded on CUDA (AA's value
dims can be 2; Triton's ``tl.dot`` wants at least 16), which changes no number.
"""
import functools
import os
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import autocast_off
from .reference import relative_query_logits

# head dims (q/k and v separately) padded with zeros up to this, per device type
MIN_HEAD_DIM = {'cuda': 16}
# torch.compile's ``dynamic`` for the CUDA kernel (see the module docstring); the environment
# variable MMATTN_FLEX_DYNAMIC=true|false|none overrides it (read at the first compile)
COMPILE_DYNAMIC = None
# dynamo's recompile limit while the compiled kernel runs (graphs per head-dim layout, dtype and
# grad mode add up across a model's layers)
RECOMPILE_LIMIT = 64
MIN_TORCH = (2, 6)  # FlexAttention with gradients for captured tensors


def _torch_version() -> Tuple[int, int]:
    major, minor = torch.__version__.split('+')[0].split('.')[:2]
    return int(major), int(''.join(c for c in minor if c.isdigit()) or 0)


@functools.lru_cache(maxsize=None)
def _cuda_flex_status() -> str:
    if _torch_version() < MIN_TORCH:
        return f'torch {torch.__version__} < {".".join(map(str, MIN_TORCH))}'
    try:
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError as e:
        return f'torch.nn.attention.flex_attention does not import: {e}'
    if not torch.cuda.is_available():
        return 'CUDA is not available'
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return 'torch.utils._triton is missing'
    if not has_triton():
        return 'triton is not installed or does not support this GPU'
    return ''


def flex_status(device=None) -> str:
    """Why FlexAttention cannot run on ``device`` (default ``'cuda'``), or ``''`` where it can:
    torch >= 2.6, a CUDA device, triton importable and supporting the GPU."""
    device = torch.device('cuda' if device is None else device)
    if device.type != 'cuda':
        return f"kernel 'flex' is chosen on CUDA only (device {device.type})"
    return _cuda_flex_status()


def flex_available(device=None) -> bool:
    """Whether the compiled FlexAttention kernel can run on ``device`` (:func:`flex_status`)."""
    return not flex_status(device)


def relative_score_mod(qh: Tensor, qw: Tensor):
    """The ``score_mod`` adding ``QH[b, h, i, j // W] + QW[b, h, i, j % W]`` (keys in raster
    order on an ``H x W`` grid; ``W`` is ``qw``'s last dim). Elementwise in its index
    arguments, so it also evaluates on broadcast index grids (the tests do)."""
    W = qw.shape[-1]

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + qh[b, h, q_idx, kv_idx // W] + qw[b, h, q_idx, kv_idx % W]

    return score_mod


def _flex_core(qc: Tensor, k: Tensor, v: Tensor, qh: Tensor, qw: Tensor) -> Tensor:
    from torch.nn.attention.flex_attention import flex_attention
    return flex_attention(qc, k, v, score_mod=relative_score_mod(qh, qw), scale=1.0)


@functools.lru_cache(maxsize=None)
def _compiled_core():
    """``torch.compile`` of the kernel, made once per process (see the module docstring)."""
    env = os.environ.get('MMATTN_FLEX_DYNAMIC', '').lower()
    dynamic = {'true': True, 'false': False, 'none': None}.get(env, COMPILE_DYNAMIC)
    return torch.compile(_flex_core, dynamic=dynamic, fullgraph=True)


def _pad_last(x: Tensor, to: int) -> Tensor:
    return x if x.shape[-1] >= to else F.pad(x, (0, to - x.shape[-1]))


def flex_relative_attention(qc: Tensor,
                            qr: Tensor,
                            k: Tensor,
                            v: Tensor,
                            rel_h: Tensor,
                            rel_w: Tensor,
                            size: Tuple[int, int],
                            *,
                            compiled: Optional[bool] = None,
                            min_head_dim: Optional[int] = None) -> Tensor:
    """Kernel ``'flex'``: q/k/v ``(B, N, L, *)``, tables ``(2L-1, d)`` or per head
    ``(N, 2L-1, d)``; returns ``(B, N, L, e)`` (same contract as
    :func:`~.chunked.chunked_relative_attention`).

    Args:
        compiled: run the ``torch.compile``-d kernel (default: on CUDA) or FlexAttention's
            eager path (default elsewhere; forward only on CPU).
        min_head_dim: zero-pad q/k and v head dims up to this (default
            ``MIN_HEAD_DIM[device type]``, 0 where not listed).
    """
    B, N, L, d = qc.shape
    e = v.shape[-1]
    H, W = size
    if H * W != L:
        raise ValueError(f"attention kernel 'flex': size {size} does not match {L} positions")
    dev = qc.device.type
    if compiled is None:
        compiled = dev == 'cuda'
    if min_head_dim is None:
        min_head_dim = MIN_HEAD_DIM.get(dev, 0)
    if dev == 'cpu' and torch.is_grad_enabled() and any(
            t.requires_grad for t in (qc, qr, k, v, rel_h, rel_w)):
        raise NotImplementedError(
            "attention kernel 'flex': FlexAttention has no backward on CPU; use kernel="
            "'chunked' (or 'ext') there, or run the forward under torch.no_grad()")
    dtype = qc.dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    dq, dv = max(d, min_head_dim), max(e, min_head_dim)
    with autocast_off(dev):
        qc_, k_ = _pad_last(qc.to(work), dq), _pad_last(k.to(work), dq)
        v_ = _pad_last(v.to(work), dv)
        # the query-side tables, outside the compiled region: graph inputs of the kernel (CPU
        # inductor's template takes captured tensors only as inputs), differentiated by autograd
        qh, qw = relative_query_logits(qr.to(work), rel_h.to(work), rel_w.to(work), size)
        qh, qw = qh.contiguous(), qw.contiguous()
        if compiled:
            limit = max(RECOMPILE_LIMIT, torch._dynamo.config.recompile_limit)
            with torch._dynamo.config.patch(recompile_limit=limit):
                out = _compiled_core()(qc_, k_, v_, qh, qw)
        else:
            with warnings.catch_warnings():
                # the eager path is what is asked for here (CPU tests, other devices)
                warnings.filterwarnings('ignore', message='flex_attention called without')
                out = _flex_core(qc_, k_, v_, qh, qw)
    return out[..., :e].to(dtype)
