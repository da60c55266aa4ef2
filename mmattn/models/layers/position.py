"""Relative position tables sized for a maximum length, and rel_to_abs.

A 1-D relative table for lengths up to ``max_len`` has ``2 * max_len - 1`` rows, row
``max_len - 1 + o`` holding the embedding of offset ``o = x_key - x_query`` in
``[-(max_len - 1), max_len - 1]``. For a length ``L <= max_len`` the offsets that occur are
``[-(L - 1), L - 1]``: the centre slice ``table[max_len - L : max_len + L - 1]``. That slice is
*exact* (the same rows a table built for ``L`` would hold if it were trained at ``max_len``) and
keeps translation equivariance, because the embedding depends on the offset only (AA paper,
Sec. 3.2; the AA note's "any input size" paragraph).

Beyond the maximum there is no exact answer. ``beyond_max`` names what to do:

- ``'interpolate'`` (default): linearly resample the ``2 * max_len - 1`` rows to ``2 * L - 1``
  rows with ``align_corners=True``, so offset 0 stays offset 0 and the extreme offsets stay
  extreme (the table is stretched, as timm and Swin do for relative tables). The default
  because detectors see sizes above the training maximum and should not crash.
- ``'error'``: raise ``ValueError`` naming the size and the maximum, for users who want the
  official fixed-size behaviour.
"""
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

BEYOND_MAX_CHOICES = ('interpolate', 'error')


def check_beyond_max(beyond_max: str, owner: str = 'relative position') -> str:
    if beyond_max not in BEYOND_MAX_CHOICES:
        raise ValueError(f'{owner}: beyond_max={beyond_max!r} is not one of '
                         f'{BEYOND_MAX_CHOICES}')
    return beyond_max


def to_2tuple_size(size: Union[int, Tuple[int, int]],
                   name: str = 'max_size',
                   owner: str = 'relative position') -> Tuple[int, int]:
    """(H, W) from an int or a pair; positive integers only."""
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and s > 0 for s in pair):
        raise ValueError(f'{owner}: {name}={size!r} must be a positive int or a pair (H, W) '
                         f'of them')
    return pair


def slice_relative_table(table: Tensor,
                         length: int,
                         beyond_max: str = 'interpolate',
                         dim: int = 0,
                         name: str = 'relative table') -> Tensor:
    """The ``2 * length - 1`` rows (along ``dim``) of a table made for a larger maximum.

    Args:
        table: ``2 * max_len - 1`` entries along ``dim`` (any other dims are carried along).
        length: the length ``L`` the attention runs at.
        beyond_max: ``'interpolate'`` or ``'error'`` when ``L > max_len`` (see module doc).
        dim: the offset dimension of ``table``.
        name: used in the error message.
    """
    n = table.shape[dim]
    if n % 2 != 1:
        raise ValueError(f'{name}: expected an odd number (2 * max - 1) of entries along dim '
                         f'{dim}, got {n}')
    max_len = (n + 1) // 2
    if length < 1:
        raise ValueError(f'{name}: length={length} must be positive')
    if length <= max_len:
        return table.narrow(dim, max_len - length, 2 * length - 1)
    check_beyond_max(beyond_max, name)
    if beyond_max == 'error':
        raise ValueError(f'{name}: size {length} exceeds the maximum {max_len} the table was '
                         f"built for (beyond_max='error'); build it with a larger max size or "
                         f"use beyond_max='interpolate'")
    # F.interpolate works on (N, C, L): move the offset axis last, everything else to C.
    moved = table.movedim(dim, -1)
    lead = moved.shape[:-1]
    flat = moved.reshape(1, -1, n)
    out = F.interpolate(flat, size=2 * length - 1, mode='linear', align_corners=True)
    return out.reshape(*lead, 2 * length - 1).movedim(-1, dim)


def rel_to_abs(x: Tensor) -> Tensor:
    """Relative logits ``(..., L, 2L-1)`` to absolute ``(..., L, L)``.

    ``out[..., i, j] = x[..., i, (j - i) + L - 1]``: row ``i`` holds the logits of query ``i``
    for offsets ``-(L-1) .. L-1``; the result indexes them by key ``j``. The pad/reshape/slice
    trick (Music Transformer's skewing, unmasked form as in the AA appendix) shifts row ``i``
    left by ``L - 1 - i`` without a gather: after one pad column every row is ``2L`` long, so
    reading the flattened buffer with row length ``2L - 1`` shifts each row by one more than
    the previous one.
    """
    *lead, L, R = x.shape
    if R != 2 * L - 1:
        raise ValueError(f'rel_to_abs: last dim {R} must be 2 * {L} - 1')
    x = F.pad(x, (0, 1))                       # (..., L, 2L)
    x = x.reshape(*lead, L * 2 * L)
    x = F.pad(x, (0, L - 1))                   # (..., 2L^2 + L - 1) = (L + 1) * (2L - 1)
    x = x.reshape(*lead, L + 1, 2 * L - 1)
    return x[..., :L, L - 1:]


def rel_to_abs_gather(x: Tensor) -> Tensor:
    """Reference for :func:`rel_to_abs` by explicit indexing (slow, obviously right)."""
    *lead, L, R = x.shape
    if R != 2 * L - 1:
        raise ValueError(f'rel_to_abs_gather: last dim {R} must be 2 * {L} - 1')
    i = torch.arange(L, device=x.device)
    idx = (i[None, :] - i[:, None] + L - 1)    # idx[i, j] = j - i + L - 1
    return torch.gather(x, -1, idx.expand(*lead, L, L))


def relative_index_1d(length: int, device=None) -> Tensor:
    """``idx[i, j] = j - i + length - 1``: the table row for query ``i`` and key ``j``."""
    i = torch.arange(length, device=device)
    return i[None, :] - i[:, None] + length - 1
