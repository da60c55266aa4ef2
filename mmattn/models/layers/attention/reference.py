"""The explicit reference: relative logits laid out by absolute position and the full
``(B, N, HW, HW)`` attention (see the package docstring)."""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from ..position import rel_to_abs, relative_index_1d
from .common import autocast_off, norm_in_own_dtype


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


def explicit_relative_attention(q: Tensor,
                                k: Tensor,
                                v: Tensor,
                                rel_h: Optional[Tensor] = None,
                                rel_w: Optional[Tensor] = None,
                                size: Optional[Tuple[int, int]] = None,
                                logit_norm: Optional[nn.Module] = None) -> Tensor:
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
        out = _explicit_relative_attention(q, k, v, rel_h, rel_w, size, logit_norm)
    return out.to(dtype)


def explicit_relative_probs(q: Tensor,
                            k: Tensor,
                            rel_h: Optional[Tensor] = None,
                            rel_w: Optional[Tensor] = None,
                            size: Optional[Tuple[int, int]] = None,
                            logit_norm: Optional[nn.Module] = None) -> Tensor:
    """The attention probabilities of the explicit path, ``(B, N, HW, HW)`` in (at least) fp32:
    row ``i`` is query ``i``'s softmax over the keys in raster order (what
    :func:`~mmattn.models.layers.base.record_attention` records for LESA and AA)."""
    work = torch.promote_types(q.dtype, torch.float32)
    q, k = q.to(work), k.to(work)
    if rel_h is not None:
        rel_h, rel_w = rel_h.to(work), rel_w.to(work)
    with autocast_off(q.device.type):
        return _probs(q, k, rel_h, rel_w, size, logit_norm)


def _explicit_relative_attention(q, k, v, rel_h, rel_w, size, logit_norm):
    return _probs(q, k, rel_h, rel_w, size, logit_norm) @ v


def _probs(q, k, rel_h, rel_w, size, logit_norm):
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
    return logits.softmax(dim=-1)
