"""A BatchNorm over LESA's stacked logits as a per-head, per-term scale, with batch statistics
from moments (no logits formed): what lets LESA's detection encoding take a fused kernel."""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .common import autocast_off
from .reference import _abs_tables


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
