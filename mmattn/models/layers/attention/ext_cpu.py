"""Fused kernel ``'ext'`` (the default on CPU where ``mmattn._ext`` is built): the compiled
relative-attention kernel of ``mmattn/ops/csrc/rel_attn.cpp`` (blocks of queries from one
image row, key tiles of whole rows, online softmax, backward recomputed from the saved
log-sum-exp; no ``(HW)^2`` tensor, and only q/k/v, the tables, the output and one float per
query saved for backward: the memory of plain attention). Same arguments and numbers as
:func:`~.chunked.chunked_relative_attention`, which runs where the extension is not built.
"""
import os
from typing import Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ....ops import ext_available, ext_status
from .common import autocast_off
from .chunked import flat_rows, head_tables

EXT_OP = 'rel_attn_fwd'
# The float32 kernel's GEMMs (rel_attn.cpp, small_gemms): 'auto' (register-blocked kernels for
# heads whose q/k or v width is not a multiple of 16, BLAS otherwise), 'blas' or 'small'; the
# environment variable MMATTN_EXT_GEMM overrides it (benchmarks compare the two).
EXT_GEMMS = {'auto': 0, 'blas': 1, 'small': 2}


def _gemm_choice() -> int:
    name = os.environ.get('MMATTN_EXT_GEMM', 'auto') or 'auto'
    if name not in EXT_GEMMS:
        raise ValueError(f'MMATTN_EXT_GEMM={name!r} is not one of {tuple(EXT_GEMMS)}')
    return EXT_GEMMS[name]


def ext_kernel_available() -> bool:
    return ext_available(EXT_OP)


class _ExtRelAttention(torch.autograd.Function):

    """``qr`` None: the relative term uses ``qc`` (no logit norm), and one query gradient
    comes back, as from plain attention (no second query-sized buffer)."""

    @staticmethod
    def forward(ctx, qc, qr, k, v, rel_h, rel_w, H, W, gemm):
        with autocast_off('cpu'):
            out, lse = torch.ops.mmattn.rel_attn_fwd(qc, qr, k, v, rel_h, rel_w, H, W, gemm)
        ctx.save_for_backward(qc, qr, k, v, rel_h, rel_w, out, lse)
        ctx.args = (H, W, gemm)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        qc, qr, k, v, rel_h, rel_w, out, lse = ctx.saved_tensors
        with autocast_off('cpu'):
            dqc, dqr, dk, dv, drh, drw = torch.ops.mmattn.rel_attn_bwd(
                dout.contiguous(), qc, qr, k, v, rel_h, rel_w, out, lse, *ctx.args)
        return dqc, (None if qr is None else dqr), dk, dv, drh, drw, None, None, None


def ext_relative_attention(qc: Tensor, qr: Tensor, k: Tensor, v: Tensor, rel_h: Tensor,
                           rel_w: Tensor, size: Tuple[int, int]) -> Tensor:
    """Kernel ``'ext'``: q/k/v ``(B, N, L, *)`` on CPU, tables ``(2L-1, d)`` or per head
    ``(N, 2L-1, d)``; returns ``(B, N, L, e)``. Half-precision inputs run in fp32 (as the
    other kernels), float64 in float64."""
    if not ext_kernel_available():
        raise RuntimeError(f"attention kernel 'ext' is not available: {ext_status()}")
    if qc.device.type != 'cpu':
        raise ValueError(f"attention kernel 'ext' runs on CPU tensors; got {qc.device}")
    B, N, L, _ = qc.shape
    e = v.shape[-1]
    H, W = size
    dtype = qc.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    qr_flat = None if qr is qc else flat_rows(qr, work)
    out = _ExtRelAttention.apply(flat_rows(qc, work), qr_flat, flat_rows(k, work),
                                 flat_rows(v, work), head_tables(rel_h, B, N, work),
                                 head_tables(rel_w, B, N, work), H, W, _gemm_choice())
    return out.view(B, N, L, e).to(dtype)
