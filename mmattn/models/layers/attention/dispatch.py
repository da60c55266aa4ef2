"""Which path runs: ``impl`` (``'auto'`` | ``'explicit'`` | ``'fused'``, or the module default)
and the fused kernel, and the entry point :func:`relative_attention`."""
import contextlib
import logging
from typing import Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .chunked import chunked_relative_attention
from .common import tracing
from .ext_cpu import ext_kernel_available, ext_relative_attention
from .flex import flex_available, flex_relative_attention
from .logit_norm import _per_head, batchnorm_logit_scale, fused_blocker
from .reference import (explicit_relative_attention, explicit_relative_probs,
                        relative_query_logits)
from .sdpa import sdpa_attention, sdpa_relative_attention

ATTN_IMPLS = ('auto', 'explicit', 'fused')
# 'ext': the compiled CPU kernel (mmattn/ops); 'chunked': pure PyTorch, any device; 'sdpa':
# relative terms as extra q/k dims of scaled_dot_product_attention; 'flex': FlexAttention with
# the relative terms as a score_mod (compiled on CUDA). 'auto' picks per device (auto_kernel).
FUSED_KERNELS = ('auto', 'ext', 'chunked', 'sdpa', 'flex')

_DEFAULT_IMPL = 'auto'
_DEFAULT_KERNEL = 'auto'


def check_attn_kernel(kernel: str, owner: str = 'attention') -> str:
    if kernel not in FUSED_KERNELS:
        raise ValueError(f'{owner}: kernel={kernel!r} is not one of {FUSED_KERNELS}')
    return kernel


def set_default_attn_kernel(kernel: str) -> None:
    """Module-level fused kernel used where a call says ``kernel='auto'`` (benchmarks compare
    kernels through whole backbones with it)."""
    global _DEFAULT_KERNEL
    _DEFAULT_KERNEL = check_attn_kernel(kernel, 'set_default_attn_kernel')


@contextlib.contextmanager
def default_attn_kernel(kernel: str):
    """``with default_attn_kernel('chunked'): ...`` switches the default kernel temporarily."""
    old = _DEFAULT_KERNEL
    set_default_attn_kernel(kernel)
    try:
        yield
    finally:
        set_default_attn_kernel(old)


def auto_kernel(device: torch.device) -> str:
    """The fused kernel ``'auto'`` means on ``device``: on CPU the compiled ``'ext'`` where
    ``mmattn._ext`` is built (``mmattn.ops.ext_status()`` says why not), else ``'chunked'``;
    on CUDA ``'flex'`` where FlexAttention runs (``flex.flex_status()`` says why not), else
    ``'chunked'``; elsewhere ``'chunked'``. A traced graph (compile, export) takes
    ``'chunked'``, whose traced form is plain tensor ops."""
    if device.type == 'cpu' and not tracing() and ext_kernel_available():
        return 'ext'
    if (device.type == 'cuda' and not tracing() and not _FLEX_FAILED
            and flex_available(device)):
        return 'flex'
    return 'chunked'


# why FlexAttention failed in this process, once 'auto' chose it (then 'auto' stops choosing it)
_FLEX_FAILED = []


def _flex_or_fallback(qc, q, k, v, rel_h, rel_w, size, block_elements):
    # 'auto' chose flex: a failure to compile it (Triton, a torch build without its CUDA
    # templates) warns once and trains on with the chunked kernel, instead of stopping the run
    try:
        return flex_relative_attention(qc, q, k, v, rel_h, rel_w, size)
    except (RuntimeError, NotImplementedError, AssertionError, ImportError) as e:
        _FLEX_FAILED.append(f'{type(e).__name__}: {e}'[:500])
        print_log("relative_attention: kernel 'flex' failed, the chunked kernel runs instead "
                  f"for the rest of this process ({_FLEX_FAILED[-1]}); kernel='flex' "
                  'reproduces the error', logger='current', level=logging.WARNING)
        return chunked_relative_attention(qc, q, k, v, rel_h, rel_w, size, block_elements)


def check_attn_impl(impl: str, owner: str = 'attention') -> str:
    if impl not in ATTN_IMPLS:
        raise ValueError(f'{owner}: attn_impl={impl!r} is not one of {ATTN_IMPLS}')
    return impl


def set_default_attn_impl(impl: str) -> None:
    """Module-level switch used when an operator's ``attn_impl`` is None."""
    global _DEFAULT_IMPL
    _DEFAULT_IMPL = check_attn_impl(impl, 'set_default_attn_impl')


@contextlib.contextmanager
def default_attn_impl(impl: str):
    """``with default_attn_impl('explicit'): ...`` switches the default temporarily."""
    old = _DEFAULT_IMPL
    set_default_attn_impl(impl)
    try:
        yield
    finally:
        set_default_attn_impl(old)


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
    if not tracing():  # logging is a graph break
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
                       return_probs: bool = False,
                       owner: str = 'relative_attention'):
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
        kernel: fused kernel, ``'auto'`` (the module default, :func:`set_default_attn_kernel`;
            if that is ``'auto'`` too, :func:`auto_kernel`) | ``'ext'`` | ``'chunked'`` |
            ``'sdpa'`` | ``'flex'``.
        block_elements: logits per block of the chunked kernel (default
            ``BLOCK_ELEMENTS[device type]``).
        return_probs: return ``(output, probs)`` with the ``(B, N, HW, HW)`` probabilities
            (fp32 or wider, detached), computed on the explicit path whatever ``impl`` says
            (attention recording, :func:`~mmattn.models.layers.base.record_attention`).
    """
    check_attn_kernel(kernel, owner)
    if (rel_h is None) != (rel_w is None):
        raise ValueError(f'{owner}: give both rel_h and rel_w or neither')
    if rel_h is not None and size is None:
        raise ValueError(f'{owner}: size=(H, W) is required with relative tables')
    if q.shape[0] == 0:
        # empty batch: nothing to attend (and no statistics to update); the kernels' blocks
        # of B * N rows would have size 0
        out = (v * 0).to(q.dtype)
        return (out, q.new_zeros(q.shape[:3] + (k.shape[2], ))) if return_probs else out
    if return_probs:
        # one logit pass serves both: the output from the same probabilities
        probs = explicit_relative_probs(q, k, rel_h, rel_w, size, logit_norm)
        return (probs @ v.to(probs.dtype)).to(q.dtype), probs.detach()
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
    chosen = kernel == 'auto' and _DEFAULT_KERNEL == 'auto'
    if kernel == 'auto':
        kernel = _DEFAULT_KERNEL if _DEFAULT_KERNEL != 'auto' else auto_kernel(q.device)
    if kernel == 'sdpa':
        qh, qw = relative_query_logits(q, rel_h, rel_w, size)
        return sdpa_relative_attention(qc, k, v, qh, qw, size)
    if kernel == 'ext' and not tracing():
        return ext_relative_attention(qc, q, k, v, rel_h, rel_w, size)
    if kernel == 'flex' and not tracing():
        if chosen:
            return _flex_or_fallback(qc, q, k, v, rel_h, rel_w, size, block_elements)
        return flex_relative_attention(qc, q, k, v, rel_h, rel_w, size)
    return chunked_relative_attention(qc, q, k, v, rel_h, rel_w, size, block_elements)
