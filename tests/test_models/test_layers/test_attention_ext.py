"""The compiled CPU kernel ``'ext'`` (mmattn/ops/csrc/rel_attn.cpp) against the explicit
reference: outputs and every gradient, float64 to rounding and float32 to ~1e-5, both GEMM
paths (BLAS and the register-blocked small GEMMs), LESA's layout with its BatchNorm logit norm
(separate content/relative queries) and AA's (narrow values), sizes that exercise the query
blocks (rows wider than 64 queries) and partial key tiles; and the fallback where the
extension is not built."""
import pytest
import torch
from torch import nn

import mmattn.models.layers.attention.dispatch as dispatch_mod
from mmattn.models.layers.attention import (auto_kernel, ext_kernel_available,
                                            ext_relative_attention,
                                            explicit_relative_attention, relative_attention)
from mmattn.ops import ext_status

needs_ext = pytest.mark.skipif(not ext_kernel_available(),
                               reason=f'compiled kernel not built: {ext_status()}')

# (H, W, d, e): LESA-like (BLAS path: widths multiples of 16), AA-like (small GEMMs),
# rows of 70 and 130 queries (two and three query blocks), tiles of 7 rows of 70 keys with
# a partial last tile, single rows and columns
CASES = [(5, 7, 4, 3), (3, 70, 16, 32), (9, 70, 16, 32), (4, 130, 20, 2), (13, 3, 6, 5),
         (1, 9, 4, 4), (9, 1, 4, 4), (1, 1, 4, 2)]


def _inputs(B, N, H, W, d, e, dtype, per_head=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    L = H * W
    shape_h = (N, 2 * H - 1, d) if per_head else (2 * H - 1, d)
    shape_w = (N, 2 * W - 1, d) if per_head else (2 * W - 1, d)
    t = [torch.randn(B, N, L, d, generator=g, dtype=dtype) * d**-0.5,
         torch.randn(B, N, L, d, generator=g, dtype=dtype),
         torch.randn(B, N, L, e, generator=g, dtype=dtype),
         0.5 * torch.randn(*shape_h, generator=g, dtype=dtype),
         0.5 * torch.randn(*shape_w, generator=g, dtype=dtype)]
    return [x.requires_grad_() for x in t]


def _run(fn, inputs, seed=1):
    out = fn(*inputs)
    g = torch.Generator().manual_seed(seed)
    dout = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    grads = torch.autograd.grad(out, inputs, dout)
    return out, grads


def _ext(kernel='ext'):
    def fn(q, k, v, rh, rw, size=None):
        return relative_attention(q, k, v, rh, rw, fn.size, impl='fused', kernel=kernel)
    return fn


def _explicit(size):
    def fn(q, k, v, rh, rw):
        return explicit_relative_attention(q, k, v, rh, rw, size)
    return fn


@needs_ext
@pytest.mark.parametrize('gemm', ['auto', 'blas', 'small'])
@pytest.mark.parametrize('case', CASES)
def test_ext_equals_explicit_float64(case, gemm, monkeypatch):
    monkeypatch.setenv('MMATTN_EXT_GEMM', gemm)
    H, W, d, e = case
    inputs = _inputs(2, 3, H, W, d, e, torch.float64, per_head=H == 9)
    fn = _ext()
    fn.size = (H, W)
    out, grads = _run(fn, inputs)
    ref, ref_grads = _run(_explicit((H, W)), inputs)
    assert out.dtype == torch.float64 and out.shape == (2, 3, H * W, e)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    for name, a, b in zip(('q', 'k', 'v', 'rel_h', 'rel_w'), grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f'grad of {name}')


@needs_ext
@pytest.mark.parametrize('gemm', ['blas', 'small'])
@pytest.mark.parametrize('case', [(9, 70, 16, 32), (4, 130, 20, 2), (6, 11, 32, 64)])
def test_ext_float32_close_to_float64_reference(case, gemm, monkeypatch):
    monkeypatch.setenv('MMATTN_EXT_GEMM', gemm)
    H, W, d, e = case
    inputs = _inputs(1, 2, H, W, d, e, torch.float32)
    fn = _ext()
    fn.size = (H, W)
    out, grads = _run(fn, inputs)
    ref, ref_grads = _run(_explicit((H, W)), [t.detach().double().requires_grad_()
                                              for t in inputs])
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=2e-6)
    for a, b in zip(grads, ref_grads):
        scale = b.abs().max()
        assert (a.double() - b).abs().max() <= 2e-5 * scale


@needs_ext
@pytest.mark.parametrize('training', [True, False])
def test_ext_with_lesa_logit_norm_equals_explicit(training):
    # LESA's BatchNorm over the stacked logits: separate content and relative queries inside
    H, W, N = 5, 70, 2
    q, k, v, rh, rw = _inputs(2, N, H, W, 16, 32, torch.float64)
    outs, grads = [], []
    for kernel in ('ext', None):
        torch.manual_seed(0)
        bn = nn.BatchNorm2d(2 * N).double().train(training)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.running_var.uniform_(0.5, 2.0)
        if kernel is None:
            out = relative_attention(q, k, v, rh, rw, (H, W), logit_norm=bn, impl='explicit')
        else:
            out = relative_attention(q, k, v, rh, rw, (H, W), logit_norm=bn, impl='fused',
                                     kernel=kernel)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), [q, k, v, rh, rw, bn.weight]))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@needs_ext
def test_ext_bfloat16_runs_in_float32():
    H, W = 4, 9
    q, k, v, rh, rw = _inputs(1, 2, H, W, 8, 8, torch.float32)
    bf = [t.detach().bfloat16() for t in (q, k, v, rh, rw)]
    out = relative_attention(*bf, (H, W), impl='fused', kernel='ext')
    assert out.dtype == torch.bfloat16
    ref = explicit_relative_attention(*[t.float() for t in bf], (H, W))
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)


@needs_ext
def test_ext_saves_no_quadratic_tensor():
    # what autograd keeps for backward: q/k/v-sized tensors, the tables, the output and one
    # float per query; nothing of (HW)^2
    H, W = 8, 9
    L = H * W
    q, k, v, rh, rw = _inputs(1, 2, H, W, 4, 4, torch.float32)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = relative_attention(q, k, v, rh, rw, (H, W), impl='fused', kernel='ext')
    out.sum().backward()
    assert sizes and max(sizes) <= 2 * L * 4
    assert q.grad.shape == q.shape and rh.grad.shape == rh.shape


@needs_ext
def test_ext_thread_count_does_not_change_results():
    # backward splits over heads, forward over (head, query block)
    H, W = 6, 70
    inputs = _inputs(2, 2, H, W, 16, 32, torch.float32)
    fn = _ext()
    fn.size = (H, W)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a, ga = _run(fn, inputs)
        torch.set_num_threads(2)
        b, gb = _run(fn, inputs)
    finally:
        torch.set_num_threads(old)
    # threads own disjoint outputs (no race): equal up to BLAS's thread-dependent rounding
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


@needs_ext
def test_auto_kernel_prefers_ext_on_cpu(monkeypatch):
    assert auto_kernel(torch.device('cpu')) == 'ext'
    monkeypatch.setenv('MMATTN_DISABLE_EXT', '1')
    assert auto_kernel(torch.device('cpu')) == 'chunked'


def test_disabled_extension_falls_back_and_explains(monkeypatch):
    monkeypatch.setenv('MMATTN_DISABLE_EXT', '1')
    H, W = 3, 4
    inputs = _inputs(1, 2, H, W, 4, 4, torch.float64)
    out = relative_attention(*inputs, (H, W), impl='fused')  # 'auto' -> chunked
    torch.testing.assert_close(out, explicit_relative_attention(*inputs, (H, W)))
    with pytest.raises(RuntimeError, match="kernel 'ext' is not available.*MMATTN_DISABLE_EXT"):
        relative_attention(*inputs, (H, W), impl='fused', kernel='ext')


@needs_ext
def test_ext_bad_inputs_name_the_argument(monkeypatch):
    q = torch.randn(2, 12, 4)
    v = torch.randn(2, 12, 3)
    with pytest.raises(RuntimeError, match=r'rel_h must be \(G, 2H-1, d\)'):
        torch.ops.mmattn.rel_attn_fwd(q, None, q, v, torch.randn(2, 4, 4), torch.randn(2, 7, 4),
                                      3, 4)
    with pytest.raises(RuntimeError, match='does not match 12 positions'):
        torch.ops.mmattn.rel_attn_fwd(q, None, q, v, torch.randn(2, 5, 4), torch.randn(2, 7, 4),
                                      3, 5)
    with pytest.raises(RuntimeError, match='gemm must be 0'):
        torch.ops.mmattn.rel_attn_fwd(q, None, q, v, torch.randn(2, 5, 4), torch.randn(2, 7, 4),
                                      3, 4, 7)
    with pytest.raises(ValueError, match='runs on CPU tensors'):
        ext_relative_attention(*[torch.empty(1, 1, 12, 4, device='meta')] * 4,
                               torch.empty(5, 4, device='meta'), torch.empty(7, 4, device='meta'),
                               (3, 4))
    monkeypatch.setenv('MMATTN_EXT_GEMM', 'fast')
    inputs = _inputs(1, 1, 3, 4, 4, 4, torch.float32)
    with pytest.raises(ValueError, match="MMATTN_EXT_GEMM='fast' is not one of"):
        relative_attention(*inputs, (3, 4), impl='fused', kernel='ext')


def test_unknown_kernel_is_refused():
    inputs = _inputs(1, 1, 3, 4, 4, 4, torch.float32)
    with pytest.raises(ValueError, match="kernel='fast' is not one of"):
        relative_attention(*inputs, (3, 4), kernel='fast')
    with pytest.raises(ValueError, match='set_default_attn_kernel'):
        dispatch_mod.set_default_attn_kernel('fast')


def test_auto_flex_failure_falls_back_to_chunked_once(monkeypatch):
    # 'auto' chose FlexAttention (CUDA) and it failed to compile: warn, run chunked, and stop
    # choosing it; an explicit kernel='flex' still raises
    def broken(*args, **kwargs):
        raise RuntimeError('triton compile failed')

    monkeypatch.setattr(dispatch_mod, 'flex_relative_attention', broken)
    monkeypatch.setattr(dispatch_mod, 'auto_kernel', lambda device: 'flex')
    monkeypatch.setattr(dispatch_mod, '_FLEX_FAILED', [])
    H, W = 3, 4
    inputs = _inputs(1, 2, H, W, 4, 4, torch.float64)
    out = relative_attention(*inputs, (H, W), impl='fused')
    torch.testing.assert_close(out, explicit_relative_attention(*inputs, (H, W)))
    assert dispatch_mod._FLEX_FAILED and 'triton compile failed' in dispatch_mod._FLEX_FAILED[0]
    with pytest.raises(RuntimeError, match='triton compile failed'):
        relative_attention(*inputs, (H, W), impl='fused', kernel='flex')
