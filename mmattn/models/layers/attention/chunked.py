"""Fused kernel ``'chunked'`` (the default): blocks of queries, recomputed in backward, no
``(HW)^2`` tensor kept; batched matmuls, so it runs on CPU too."""
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .common import autocast_off, tracing
from .logit_norm import _per_head

# Logits per block (CPU: per intra-op thread) of the chunked kernel. CPU: 2^17 fp32 = 512 KiB,
# inside a core's L2, so the elementwise passes (bias add, softmax, softmax backward) run from
# cache; measured faster than larger blocks despite more Python iterations. CUDA: large blocks,
# few kernel launches.
BLOCK_ELEMENTS = {'cpu': 1 << 17, 'cuda': 1 << 26}
# Logits per block in a traced graph (compile, export): fixed, whatever the thread count, and
# large, because every block is one more copy of the block's ops in the graph (at the CPU
# eager blocks an AA-R50 graph holds thousands of them: what made its ONNX export slow).
TRACE_BLOCK_ELEMENTS = 1 << 24


def _block_shape(G: int, L: int, block_elements: int, device: torch.device,
                 par: Optional[int] = None) -> Tuple[int, int]:
    """``(heads, rows)`` per block: about ``block_elements`` logits per intra-op thread (on CPU
    a block of all threads' share stays in their L2 caches), query rows first, then as many
    heads as fit (a batched matmul over heads splits across threads without synchronising
    inside one small GEMM). ``par``: the thread count to plan for (default: this process's on
    CPU, 1 elsewhere)."""
    if par is None:
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


def _traced_forward(qc, qr, k, v, rel_h, rel_w, H, W, block_elements):
    # the Function's forward with plain autograd ops and the blocks joined by cat: what
    # tracers record correctly (blocks planned for one thread, so the graph does not depend
    # on the machine that traced it)
    G, L, _ = qc.shape
    gb, rows = _block_shape(G, L, block_elements, qc.device, par=1)
    kt = k.transpose(1, 2)
    th_t, tw_t = rel_h.transpose(1, 2), rel_w.transpose(1, 2)
    row_blocks = []
    for s in range(0, L, rows):
        t = min(L, s + rows)
        ih, iw = _block_indices(s, t, H, W, qc.device)
        head_blocks = []
        for g0 in range(0, G, gb):
            g1 = min(G, g0 + gb)
            gn, c = g1 - g0, t - s
            p = torch.bmm(qc[g0:g1, s:t], kt[g0:g1])
            qw = torch.bmm(qr[g0:g1, s:t], tw_t[g0:g1]).gather(-1, iw.expand(gn, c, W))
            qh = torch.bmm(qr[g0:g1, s:t], th_t[g0:g1]).gather(-1, ih.expand(gn, c, H))
            p = (p.view(gn, c, H, W) + qh[..., None] + qw[..., None, :]).view(gn, c, L)
            head_blocks.append(torch.bmm(torch.softmax(p, -1), v[g0:g1]))
        row_blocks.append(torch.cat(head_blocks, 0) if len(head_blocks) > 1 else head_blocks[0])
    return torch.cat(row_blocks, 1) if len(row_blocks) > 1 else row_blocks[0]


def flat_rows(x: Tensor, work: torch.dtype) -> Tensor:
    """``(B, N, L, c)`` -> ``(B * N, L, c)``, contiguous, in ``work``: the fused kernels'
    layout (one row per image and head)."""
    B, N, L, c = x.shape
    return x.to(work).reshape(B * N, L, c).contiguous()


def head_tables(rel: Tensor, B: int, N: int, work: torch.dtype) -> Tensor:
    """A relative table ``(2L-1, d)`` or per head ``(N, 2L-1, d)`` -> ``(B * N, 2L-1, d)``, one
    per row of :func:`flat_rows`."""
    rel = _per_head(rel, N).to(work)
    return rel.expand(B, *rel.shape).reshape(B * N, *rel.shape[1:]).contiguous()


def chunked_relative_attention(qc: Tensor, qr: Tensor, k: Tensor, v: Tensor, rel_h: Tensor,
                               rel_w: Tensor, size: Tuple[int, int],
                               block_elements: Optional[int] = None) -> Tensor:
    """Fused kernel ``'chunked'``: q/k/v ``(B, N, L, *)``, tables ``(2L-1, d)`` or per head
    ``(N, 2L-1, d)``; returns ``(B, N, L, e)``."""
    B, N, L, _ = qc.shape
    e = v.shape[-1]
    H, W = size
    dtype = qc.dtype
    # Half-precision logits would overflow/round in exp; the blocks are small, so run fp32.
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    if block_elements is None and not tracing():
        block_elements = BLOCK_ELEMENTS.get(qc.device.type, BLOCK_ELEMENTS['cuda'])

    args = (flat_rows(qc, work), flat_rows(qr, work), flat_rows(k, work), flat_rows(v, work),
            head_tables(rel_h, B, N, work), head_tables(rel_w, B, N, work), H, W)
    if tracing():
        out = _traced_forward(*args, block_elements or TRACE_BLOCK_ELEMENTS)
    else:
        out = _ChunkedRelAttention.apply(*args, int(block_elements))
    return out.view(B, N, L, e).to(dtype)
