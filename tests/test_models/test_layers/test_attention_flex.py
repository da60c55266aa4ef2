"""Kernel 'flex' (FlexAttention with the relative terms as a score_mod).

On CPU: the forward (FlexAttention's eager path) against the explicit reference, the score_mod
evaluated over index grids (values and gradients through autograd: FlexAttention has no CPU
backward), and the dispatch. The CUDA tests (compiled kernel, gradients) are never needed for
CI: they run where a GPU is.
"""
import pytest
import torch
from torch import nn

import mmattn.models.layers.attention.dispatch as dispatch_mod
import mmattn.models.layers.attention.flex as flex_mod
from mmattn.models.layers.attention import (FUSED_KERNELS, auto_kernel, check_attn_kernel,
                                            expand_relative_logits, explicit_relative_attention,
                                            flex_available, flex_relative_attention,
                                            flex_status, relative_attention,
                                            relative_query_logits)
from mmattn.models.layers.attention.flex import relative_score_mod

SIZES = [(3, 5), (4, 4), (1, 6), (5, 1)]


def _inputs(B=2, N=3, H=3, W=5, d=4, e=6, dtype=torch.float32, per_head=False, seed=0,
            device='cpu'):
    g = torch.Generator().manual_seed(seed)
    L = H * W
    lead = (N, ) if per_head else ()
    t = [torch.randn(B, N, L, d, generator=g, dtype=dtype),
         torch.randn(B, N, L, d, generator=g, dtype=dtype),
         torch.randn(B, N, L, e, generator=g, dtype=dtype),
         0.5 * torch.randn(*lead, 2 * H - 1, d, generator=g, dtype=dtype),
         0.5 * torch.randn(*lead, 2 * W - 1, d, generator=g, dtype=dtype)]
    return [x.to(device) for x in t]


def _grid_logits(qc, qr, k, rel_h, rel_w, size):
    """The logits FlexAttention forms: ``qc k^T`` plus the score_mod at every (b, h, i, j)."""
    B, N, L, _ = qc.shape
    qh, qw = relative_query_logits(qr, rel_h, rel_w, size)
    mod = relative_score_mod(qh, qw)
    b = torch.arange(B).view(B, 1, 1, 1)
    h = torch.arange(N).view(1, N, 1, 1)
    i = torch.arange(L).view(1, 1, L, 1)
    j = torch.arange(L).view(1, 1, 1, L)
    return mod(qc @ k.transpose(-1, -2), b, h, i, j)


def _reference(qc, qr, k, v, rel_h, rel_w, size):
    # content term from qc, relative term from qr (the two differ under a folded logit norm)
    qh, qw = relative_query_logits(qr, rel_h, rel_w, size, method='rel_to_abs')
    logits = qc @ k.transpose(-1, -2) + expand_relative_logits(qh, qw, size)
    return logits.softmax(-1) @ v


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('dtype,atol', [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize('per_head', [False, True])
def test_flex_forward_equals_explicit(size, dtype, atol, per_head):
    H, W = size
    q, k, v, rel_h, rel_w = _inputs(H=H, W=W, dtype=dtype, per_head=per_head)
    with torch.no_grad():
        out = flex_relative_attention(q, q, k, v, rel_h, rel_w, size)
        ref = explicit_relative_attention(q, k, v, rel_h, rel_w, size)
    assert out.shape == ref.shape and out.dtype == dtype
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)


@pytest.mark.parametrize('min_head_dim', [0, 16])
def test_flex_separate_content_and_relative_queries(min_head_dim):
    # qc != qr (a folded logit norm), q/k dim 20 and v dim 2 (AA's stage-2 layout, small)
    size = (3, 4)
    q, k, v, rel_h, rel_w = _inputs(H=3, W=4, d=20, e=2, per_head=True, dtype=torch.float64)
    qc = q * torch.tensor([0.5, 2.0, -1.0], dtype=q.dtype).view(1, 3, 1, 1)
    with torch.no_grad():
        out = flex_relative_attention(qc, q, k, v, rel_h, rel_w, size,
                                      min_head_dim=min_head_dim)
    torch.testing.assert_close(out, _reference(qc, q, k, v, rel_h, rel_w, size), rtol=0,
                               atol=1e-12)
    assert out.shape == v.shape


def test_flex_half_inputs_run_in_fp32():
    size = (3, 5)
    q, k, v, rel_h, rel_w = _inputs()
    with torch.no_grad():
        out = flex_relative_attention(*(t.bfloat16() for t in (q, q, k, v, rel_h, rel_w)), size)
        ref = explicit_relative_attention(*(t.bfloat16() for t in (q, k, v, rel_h, rel_w)),
                                          size)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), rtol=0, atol=1e-2)


def test_flex_with_batchnorm_logit_norm_through_dispatch():
    # LESA's layout: BatchNorm over the stacked [content, relative] logits, folded into scales
    size = (3, 5)
    N = 3
    q, k, v, rel_h, rel_w = _inputs(N=N, dtype=torch.float64)
    bn = nn.BatchNorm2d(2 * N).double().eval()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(-1.5, 2.0, 2 * N))
        bn.bias.copy_(torch.linspace(-0.3, 0.3, 2 * N))
        bn.running_mean.copy_(torch.linspace(-1, 1, 2 * N))
        bn.running_var.copy_(torch.linspace(0.5, 3, 2 * N))
        ref = relative_attention(q, k, v, rel_h, rel_w, size, logit_norm=bn, impl='explicit')
        out = relative_attention(q, k, v, rel_h, rel_w, size, logit_norm=bn, impl='fused',
                                 kernel='flex')
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('per_head', [False, True])
def test_score_mod_over_index_grids(size, per_head):
    # the score_mod's value at every (b, h, i, j) is QH[i, y_j] + QW[i, x_j], gradients too
    H, W = size
    q, k, _, rel_h, rel_w = _inputs(H=H, W=W, dtype=torch.float64, per_head=per_head)
    qh, qw = relative_query_logits(q, rel_h, rel_w, size)
    qh.requires_grad_()
    qw.requires_grad_()
    B, N, L, _ = q.shape
    mod = relative_score_mod(qh, qw)
    grid = mod(torch.zeros(B, N, L, L, dtype=q.dtype), torch.arange(B).view(B, 1, 1, 1),
               torch.arange(N).view(1, N, 1, 1), torch.arange(L).view(1, 1, L, 1),
               torch.arange(L).view(1, 1, 1, L))
    ref = expand_relative_logits(qh, qw, size)
    torch.testing.assert_close(grid, ref, rtol=0, atol=0)
    w = torch.randn(B, N, L, L, dtype=q.dtype, generator=torch.Generator().manual_seed(1))
    g = torch.autograd.grad((grid * w).sum(), (qh, qw))
    g_ref = torch.autograd.grad((ref * w).sum(), (qh, qw))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_flex_logits_gradients_reach_queries_and_tables():
    # what FlexAttention's backward differentiates (qc k^T + score_mod with captured QH/QW built
    # from qr and the tables), run densely with autograd: gradients equal the explicit path's
    size = (3, 4)
    inputs = [t.requires_grad_() for t in _inputs(H=3, W=4, dtype=torch.float64, per_head=True)]
    q, k, v, rel_h, rel_w = inputs
    out = _grid_logits(q, q, k, rel_h, rel_w, size).softmax(-1) @ v
    ref = explicit_relative_attention(q, k, v, rel_h, rel_w, size)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    g = torch.autograd.grad((out * w).sum(), inputs)
    g_ref = torch.autograd.grad((ref * w).sum(), inputs)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_flex_cpu_backward_is_refused_clearly():
    q, k, v, rel_h, rel_w = _inputs()
    rel_w.requires_grad_()
    with pytest.raises(NotImplementedError, match="no backward on CPU.*'chunked'"):
        flex_relative_attention(q, q, k, v, rel_h, rel_w, (3, 5))


def test_flex_size_mismatch():
    q, k, v, rel_h, rel_w = _inputs()
    with pytest.raises(ValueError, match='does not match 15 positions'):
        flex_relative_attention(q, q, k, v, rel_h, rel_w, (4, 4))


def test_flex_availability_here():
    assert 'flex' in FUSED_KERNELS and check_attn_kernel('flex') == 'flex'
    assert not flex_available(torch.device('cpu'))
    assert 'CUDA only' in flex_status('cpu')
    if not torch.cuda.is_available():
        assert not flex_available('cuda') and flex_status('cuda')


def test_auto_kernel_choices(monkeypatch):
    cuda, cpu = torch.device('cuda'), torch.device('cpu')
    monkeypatch.setattr(dispatch_mod, 'tracing', lambda: False)
    monkeypatch.setattr(dispatch_mod, 'flex_available', lambda device: True)
    assert auto_kernel(cuda) == 'flex'
    monkeypatch.setattr(dispatch_mod, 'flex_available', lambda device: False)
    assert auto_kernel(cuda) == 'chunked'
    # CPU as before: 'ext' where built, else 'chunked'; flex is never chosen there
    monkeypatch.setattr(dispatch_mod, 'flex_available', lambda device: True)
    monkeypatch.setattr(dispatch_mod, 'ext_kernel_available', lambda: True)
    assert auto_kernel(cpu) == 'ext'
    monkeypatch.setattr(dispatch_mod, 'ext_kernel_available', lambda: False)
    assert auto_kernel(cpu) == 'chunked'
    assert auto_kernel(torch.device('meta')) == 'chunked'
    # a traced graph takes the plain-op kernel
    monkeypatch.setattr(dispatch_mod, 'tracing', lambda: True)
    assert auto_kernel(cuda) == 'chunked'


def test_relative_attention_routes_to_flex(monkeypatch):
    calls = []

    def spy(qc, qr, k, v, rel_h, rel_w, size):
        calls.append(size)
        return flex_mod.flex_relative_attention(qc, qr, k, v, rel_h, rel_w, size)

    monkeypatch.setattr(dispatch_mod, 'flex_relative_attention', spy)
    monkeypatch.setattr(dispatch_mod, 'auto_kernel', lambda device: 'flex')
    q, k, v, rel_h, rel_w = _inputs()
    with torch.no_grad():
        out = relative_attention(q, k, v, rel_h, rel_w, (3, 5), impl='fused')
        ref = relative_attention(q, k, v, rel_h, rel_w, (3, 5), impl='explicit')
        with dispatch_mod.default_attn_kernel('chunked'):  # the module default wins over auto
            relative_attention(q, k, v, rel_h, rel_w, (3, 5), impl='fused')
    assert calls == [(3, 5)]
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


@cuda_only
@pytest.mark.parametrize('per_head', [False, True])
def test_flex_cuda_equals_explicit_with_gradients(per_head):
    if not flex_available('cuda'):
        pytest.skip(flex_status('cuda'))
    size = (6, 10)
    inputs = [t.requires_grad_() for t in _inputs(H=6, W=10, d=16, e=32, per_head=per_head,
                                                   device='cuda')]
    q, k, v, rel_h, rel_w = inputs
    out = flex_relative_attention(q, q, k, v, rel_h, rel_w, size)
    ref = explicit_relative_attention(q, k, v, rel_h, rel_w, size)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
    w = torch.linspace(-1, 1, out.numel(), device='cuda').view_as(out)
    g = torch.autograd.grad((out * w).sum(), inputs)
    g_ref = torch.autograd.grad((ref * w).sum(), inputs)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-3)


@cuda_only
def test_auto_kernel_is_flex_on_cuda():
    assert auto_kernel(torch.device('cuda')) == ('flex' if flex_available('cuda') else 'chunked')
