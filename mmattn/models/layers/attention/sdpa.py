"""``F.scaled_dot_product_attention`` paths: plain attention (no position term, e.g. AA with
``pos_enc='none'``) and the fused kernel ``'sdpa'`` (relative logits as extra query/key dims;
exact, chosen with ``relative_attention(kernel='sdpa')``; on GPU it reaches the flash kernels)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


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
