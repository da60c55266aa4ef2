"""Fused kernel ``'ext'`` (the default on CPU where ``mmattn._ext`` is built): the compiled
relative-attention kernel of ``mmattn/ops/csrc/rel_attn.cpp`` (blocks of queries from one
image row, key tiles of whole rows, online softmax, backward recomputed from the saved
log-sum-exp; no ``(HW)^2`` tensor, and only q/k/v, the tables, the output and one float per
query saved for backward: the memory of plain attention). Same arguments and numbers as
:func:`~.chunked.chunked_relative_attention`, which runs where the extension is not built.
"""
from typing import Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ....ops import ext_available, ext_status
from .common import autocast_off
from .logit_norm import _per_head

EXT_OP = 'rel_attn_fwd'


def ext_kernel_available() -> bool:
    return ext_available(EXT_OP)


class _ExtRelAttention(torch.autograd.Function):

    @staticmethod
    def forward(ctx, qc, qr, k, v, rel_h, rel_w, H, W):
        with autocast_off('cpu'):
            out, lse = torch.ops.mmattn.rel_attn_fwd(qc, qr, k, v, rel_h, rel_w, H, W)
        ctx.save_for_backward(qc, qr, k, v, rel_h, rel_w, out, lse)
        ctx.HW = (H, W)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        qc, qr, k, v, rel_h, rel_w, out, lse = ctx.saved_tensors
        with autocast_off('cpu'):
            grads = torch.ops.mmattn.rel_attn_bwd(dout.contiguous(), qc, qr, k, v, rel_h, rel_w,
                                                  out, lse, *ctx.HW)
        return (*grads, None, None)


def ext_relative_attention(qc: Tensor, qr: Tensor, k: Tensor, v: Tensor, rel_h: Tensor,
                           rel_w: Tensor, size: Tuple[int, int]) -> Tensor:
    """Kernel ``'ext'``: q/k/v ``(B, N, L, *)`` on CPU, tables ``(2L-1, d)`` or per head
    ``(N, 2L-1, d)``; returns ``(B, N, L, e)``. Half-precision inputs run in fp32 (as the
    other kernels), float64 in float64."""
    if not ext_kernel_available():
        raise RuntimeError(f"attention kernel 'ext' is not available: {ext_status()}")
    if qc.device.type != 'cpu':
        raise ValueError(f"attention kernel 'ext' runs on CPU tensors; got {qc.device}")
    B, N, L, d = qc.shape
    e = v.shape[-1]
    H, W = size
    dtype = qc.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    G = B * N

    def flat(x, c):
        return x.to(work).reshape(G, L, c).contiguous()

    def heads(rel):
        rel = _per_head(rel, N).to(work)
        return rel.expand(B, *rel.shape).reshape(G, *rel.shape[1:]).contiguous()

    out = _ExtRelAttention.apply(flat(qc, d), flat(qr, d), flat(k, d), flat(v, e),
                                 heads(rel_h), heads(rel_w), H, W)
    return out.view(B, N, L, e).to(dtype)
