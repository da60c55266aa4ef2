"""Exact 2-D relative-position attention, shared by LESA and AA (a package, one file per
concern: ``reference``, ``logit_norm``, ``chunked``, ``flex``, ``sdpa``, ``dispatch``,
``common``).

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
  Kernels that compute it; ``kernel='auto'`` takes ``'ext'`` on CPU where it is built,
  ``'flex'`` on CUDA where FlexAttention runs, ``'chunked'`` otherwise
  (:func:`auto_kernel`; :func:`default_attn_kernel` switches the default):

  * ``'ext'`` (``ext_cpu.py`` over ``mmattn/ops/csrc/rel_attn.cpp``; default on CPU): the
    compiled kernel. Queries in blocks from one image row, so the row term of every query in
    the block is one table lookup per key row and the column term a contiguous slice of
    ``QW``; key tiles of whole image rows; content logits by GEMM, the two table terms added
    in the pass that takes the row maximum, online softmax (FlashAttention), one GEMM for
    ``P v``; backward recomputes ``P`` from the saved log-sum-exp. Saves the inputs, the
    output and one float per query: the memory of plain attention. Float32 uses
    register-blocked GEMMs for heads whose widths are not multiples of 16 (AA's 20/2), BLAS
    otherwise; float64 (tests) BLAS.
  * ``'chunked'`` (default where ``'ext'`` is not built, and on CUDA without FlexAttention): a
    custom autograd Function that walks over blocks of queries (and
    heads), builds each block's QW/QH from its queries and the tables, its logits, softmax and
    output, and saves only its inputs and output; backward recomputes each block
    (FlashAttention-style recomputation, written with batched matmuls so that it runs on CPU,
    where FlexAttention has no backward). On CPU a block fits in L2, so the elementwise
    passes cost little next to the matmuls.
  * ``'sdpa'``: the relative logits ride as extra query/key dims of
    ``F.scaled_dot_product_attention``: ``q_aug = [q, QH, QW]``, ``k_aug = [k, onehot(y_j),
    onehot(x_j)]`` (v zero-padded where the kernel needs equal head dims). Exact too, but the
    logit matmul grows from ``d`` to ``d + H + W`` and QH/QW are materialised.
  * ``'flex'`` (``flex.py``; chosen by ``'auto'`` on CUDA where FlexAttention runs,
    :func:`flex_available`): PyTorch's FlexAttention, ``torch.compile``-d on CUDA, with
    ``QH[i, y_j] + QW[i, x_j]`` as its ``score_mod`` (QH/QW captured; their gradients come
    from FlexAttention's backward). The BatchNorm logit norm is folded as for the other
    kernels, so no kernel of its own is needed. On CPU it runs forward only (eager).

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

The files, and which user path each serves:

- ``reference.py``: the explicit path. Runs when asked (``attn_impl='explicit'``, the FLOP
  counts of the ledger), for logit norms the fused path cannot fold (GroupNorm, SyncBN in
  distributed training) and for LESA's classification encoding (1-D offsets, no low-rank form);
  the tests' reference for every fused result.
- ``logit_norm.py``: the BatchNorm folding, which only LESA's detection encoding needs (its
  ``bn_similarity``); AA has no logit norm.
- ``ext_cpu.py``: the default fused kernel on CPU (LESA detection and AA with relative
  tables), where ``make install`` built ``mmattn._ext`` (``mmattn.ops.ext_status()`` says).
- ``chunked.py``: the pure-PyTorch fused kernel: CPU without the extension, CUDA without
  FlexAttention, and every traced graph (compile, export).
- ``flex.py``: the default fused kernel on CUDA (FlexAttention).
- ``sdpa.py``: attention without a position term (AA ``pos_enc='none'``/``'sine'``/
  ``'coordconv'``), and the ``kernel='sdpa'`` variant of the relative path, kept as the
  fused option that reaches the GPU flash kernels (not measured on a GPU here; nothing selects
  it by default).
- ``dispatch.py``: the choice of path and kernel, the module default and
  :func:`relative_attention`; ``common.py``: autocast and dtype helpers the operators share.

Removed in the split because only tests reached them: ``explicit_relative_attention``'s
``return_probs`` (a test reads the probabilities with identity values instead) and
``get_default_attn_impl``.
"""
from .common import autocast_off, norm_in_own_dtype, outside_autocast
from .reference import (expand_relative_logits, explicit_relative_attention,
                        explicit_relative_probs, relative_query_logits)
from .logit_norm import batchnorm_logit_scale, fused_blocker, logit_moments
from .chunked import BLOCK_ELEMENTS, chunked_relative_attention
from .sdpa import sdpa_attention, sdpa_relative_attention
from .ext_cpu import ext_kernel_available, ext_relative_attention
from .flex import flex_available, flex_relative_attention, flex_status
from .dispatch import (ATTN_IMPLS, FUSED_KERNELS, auto_kernel, check_attn_impl,
                       check_attn_kernel, default_attn_impl, default_attn_kernel,
                       relative_attention, resolve_path, set_default_attn_impl,
                       set_default_attn_kernel)

__all__ = [
    'ATTN_IMPLS',
    'BLOCK_ELEMENTS',
    'FUSED_KERNELS',
    'auto_kernel',
    'autocast_off',
    'batchnorm_logit_scale',
    'check_attn_impl',
    'check_attn_kernel',
    'chunked_relative_attention',
    'default_attn_impl',
    'default_attn_kernel',
    'ext_kernel_available',
    'ext_relative_attention',
    'expand_relative_logits',
    'explicit_relative_attention',
    'explicit_relative_probs',
    'flex_available',
    'flex_relative_attention',
    'flex_status',
    'fused_blocker',
    'logit_moments',
    'norm_in_own_dtype',
    'outside_autocast',
    'relative_attention',
    'relative_query_logits',
    'resolve_path',
    'sdpa_attention',
    'sdpa_relative_attention',
    'set_default_attn_impl',
    'set_default_attn_kernel',
]
