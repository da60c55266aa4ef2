import copy

import pytest
import torch
from torch import nn

import mmattn.models.layers.attention as attn_mod
import mmattn.models.layers.attention.dispatch as dispatch_mod
from mmattn.models.layers.attention import (batchnorm_logit_scale, default_attn_impl,
                                            expand_relative_logits, explicit_relative_attention,
                                            logit_moments, relative_attention,
                                            relative_query_logits)
from mmattn.models.layers.position import slice_relative_table

SIZES = [(4, 4), (3, 5), (5, 3), (1, 6), (3, 3)]


def _inputs(B=2, N=3, H=3, W=5, d=4, e=6, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    L = H * W
    t = [torch.randn(B, N, L, d, generator=g, dtype=dtype),
         torch.randn(B, N, L, d, generator=g, dtype=dtype),
         torch.randn(B, N, L, e, generator=g, dtype=dtype),
         0.5 * torch.randn(2 * H - 1, d, generator=g, dtype=dtype),
         0.5 * torch.randn(2 * W - 1, d, generator=g, dtype=dtype)]
    return [x.requires_grad_() for x in t]


def _brute_relative(q, rel_h, rel_w, H, W):
    # l_ij = q_i . r_W[x_j - x_i] + q_i . r_H[y_j - y_i], straight from AA Eq. 3
    L = H * W
    y, x = torch.arange(L) // W, torch.arange(L) % W
    rw = rel_w[x[None, :] - x[:, None] + W - 1]           # (L, L, d)
    rh = rel_h[y[None, :] - y[:, None] + H - 1]
    return torch.einsum('bnid,ijd->bnij', q, rw) + torch.einsum('bnid,ijd->bnij', q, rh)


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('method', ['gather', 'rel_to_abs'])
def test_relative_query_logits_brute_force(size, method):
    H, W = size
    q, _, _, rh, rw = _inputs(H=H, W=W, dtype=torch.float64)
    qh, qw = relative_query_logits(q, rh, rw, size, method=method)
    assert qh.shape == (2, 3, H * W, H) and qw.shape == (2, 3, H * W, W)
    torch.testing.assert_close(expand_relative_logits(qh, qw, size),
                               _brute_relative(q, rh, rw, H, W))


@pytest.mark.parametrize('method', ['gather', 'rel_to_abs'])
def test_relative_query_logits_per_head_tables(method):
    H, W = 3, 4
    q = torch.randn(2, 3, H * W, 4, dtype=torch.float64)
    rh = torch.randn(3, 2 * H - 1, 4, dtype=torch.float64)
    rw = torch.randn(3, 2 * W - 1, 4, dtype=torch.float64)
    qh, qw = relative_query_logits(q, rh, rw, (H, W), method=method)
    full = expand_relative_logits(qh, qw, (H, W))
    for n in range(3):
        torch.testing.assert_close(full[:, n:n + 1],
                                   _brute_relative(q[:, n:n + 1], rh[n], rw[n], H, W))


def test_translation_equivariance_of_attention_map():
    """Shift the content by one cell inside a larger grid: the logits shift with it, and the
    attention map over the shifted keys (renormalised over them) equals the original one."""
    torch.manual_seed(0)
    H, W, d, max_len = 3, 4, 5, 6
    rel_h_full = torch.randn(2 * max_len - 1, d)
    rel_w_full = torch.randn(2 * max_len - 1, d)
    q = torch.randn(1, 2, H, W, d)
    k = torch.randn(1, 2, H, W, d)
    v = torch.randn(1, 2, H * W, 2)

    def run(qg, kg):
        h, w = qg.shape[2:4]
        rh = slice_relative_table(rel_h_full, h)
        rw = slice_relative_table(rel_w_full, w)
        qf, kf = qg.reshape(1, 2, h * w, d), kg.reshape(1, 2, h * w, d)
        logits = qf @ kf.transpose(-1, -2) + expand_relative_logits(
            *relative_query_logits(qf, rh, rw, (h, w)), (h, w))
        # identity values: the output rows are the attention probabilities
        eye = torch.eye(h * w).expand(1, 2, h * w, h * w)
        probs = explicit_relative_attention(qf, kf, eye, rh, rw, (h, w))
        return logits, probs

    small_logits, small_probs = run(q, k)
    for dy, dx in [(0, 1), (1, 0), (1, 1)]:
        Q = torch.randn(1, 2, H + 1, W + 1, d)
        K = torch.randn(1, 2, H + 1, W + 1, d)
        Q[:, :, dy:dy + H, dx:dx + W] = q
        K[:, :, dy:dy + H, dx:dx + W] = k
        big_logits, big_probs = run(Q, K)
        idx = ((torch.arange(H)[:, None] + dy) * (W + 1) + torch.arange(W)[None, :] + dx)
        idx = idx.flatten()
        torch.testing.assert_close(big_logits[..., idx[:, None], idx[None, :]], small_logits,
                                   rtol=1e-5, atol=1e-5)
        sub = big_probs[..., idx[:, None], idx[None, :]]
        torch.testing.assert_close(sub / sub.sum(-1, keepdim=True), small_probs,
                                   rtol=1e-5, atol=1e-6)


def _run(inputs, size, **kwargs):
    out = relative_attention(*inputs, size, **kwargs)
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
    grads = torch.autograd.grad(loss, inputs)
    return out, grads


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('kernel,block', [('chunked', None), ('chunked', 7), ('chunked', 40),
                                          ('sdpa', None)])
def test_fused_equals_explicit(size, kernel, block):
    H, W = size
    inputs = _inputs(H=H, W=W)
    ref, ref_g = _run(inputs, size, impl='explicit')
    out, g = _run(inputs, size, impl='fused', kernel=kernel, block_elements=block)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    for a, b in zip(g, ref_g):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_chunked_kernel_gradcheck():
    H, W = 2, 3
    inputs = [x.detach().double().requires_grad_() for x in _inputs(B=1, N=2, H=H, W=W, d=3,
                                                                    e=2)]
    fn = lambda *t: relative_attention(*t, (H, W), impl='fused', block_elements=10)  # noqa
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


def test_no_position_terms():
    inputs = _inputs(H=3, W=4, e=5)[:3]
    ref = explicit_relative_attention(*inputs)
    out = relative_attention(*inputs, impl='fused')
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_bfloat16_inputs_run_in_float32_blocks():
    inputs = [x.detach() for x in _inputs(H=3, W=4)]
    ref = relative_attention(*inputs, (3, 4), impl='explicit')
    out = relative_attention(*[x.bfloat16() for x in inputs], (3, 4), impl='fused')
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0.1)


def test_fused_under_cpu_autocast_matches_fp32():
    inputs = _inputs(H=3, W=4)
    bn = nn.BatchNorm2d(6)
    ref = relative_attention(*inputs, (3, 4), logit_norm=copy.deepcopy(bn), impl='explicit')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = relative_attention(*inputs, (3, 4), logit_norm=bn, impl='fused')
    out.float().sum().backward()
    assert all(x.grad is not None for x in inputs)
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize('per_head', [False, True])
def test_logit_moments_match_direct_statistics(per_head):
    H, W = 3, 5
    q, k, _, rh, rw = _inputs(H=H, W=W, dtype=torch.float64)
    if per_head:
        rh = torch.randn(3, *rh.shape, dtype=torch.float64)
        rw = torch.randn(3, *rw.shape, dtype=torch.float64)
    qh, qw = relative_query_logits(q, rh, rw, (H, W))
    mean, var, n = logit_moments(q, k, rh, rw, (H, W))
    stacked = torch.cat([q @ k.transpose(-1, -2), expand_relative_logits(qh, qw, (H, W))], 1)
    assert n == 2 * (H * W)**2
    torch.testing.assert_close(mean, stacked.mean((0, 2, 3)))
    torch.testing.assert_close(var, stacked.var((0, 2, 3), unbiased=False))


def _bn(channels, momentum=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, momentum=momentum)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.normal_(generator=g)
        bn.running_mean.normal_(generator=g)
        bn.running_var.uniform_(2.0, 4.0, generator=g)
    return bn


@pytest.mark.parametrize('size', [(4, 4), (3, 5)])
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('with_rel', [True, False])
def test_fused_batchnorm_on_logits_equals_explicit(size, training, momentum, with_rel):
    H, W = size
    inputs = _inputs(H=H, W=W)
    if not with_rel:
        inputs = inputs[:3] + [None, None]
    N = inputs[0].shape[1]
    bn0 = _bn((2 if with_rel else 1) * N, momentum)
    results = {}
    for impl in ('explicit', 'fused'):
        bn = copy.deepcopy(bn0).train(training)
        out = None
        for _ in range(2):  # two steps: running statistics compound
            out = relative_attention(*inputs, size, logit_norm=bn, impl=impl)
        params = [x for x in inputs if x is not None] + [bn.weight, bn.bias]
        grads = torch.autograd.grad((out * out.detach().sign()).sum(), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        results[impl] = (out, grads, dict(bn.named_buffers()))
    (o0, g0, b0), (o1, g1, b1) = results['explicit'], results['fused']
    torch.testing.assert_close(o1, o0, rtol=0, atol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    for name in b0:
        torch.testing.assert_close(b1[name], b0[name], rtol=1e-5, atol=1e-6)
    if training:
        assert int(b1['num_batches_tracked']) == 2
        assert not torch.equal(b1['running_var'], bn0.running_var)


def test_batchnorm_without_running_stats_uses_batch_statistics():
    inputs = _inputs(H=3, W=4)
    bn = nn.BatchNorm2d(6, track_running_stats=False).eval()
    ref = relative_attention(*inputs, (3, 4), logit_norm=bn, impl='explicit')
    out = relative_attention(*inputs, (3, 4), logit_norm=bn, impl='fused')
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_logit_scale_checks_channels():
    q, k, _, rh, rw = _inputs(H=3, W=4)
    with pytest.raises(ValueError, match='expected 2 terms x 3 heads = 6'):
        batchnorm_logit_scale(nn.BatchNorm2d(4), q, k, rh, rw, (3, 4))


def test_auto_path_and_logging(monkeypatch):
    logged = []
    monkeypatch.setattr(dispatch_mod, 'print_log', lambda msg, **kw: logged.append((msg, kw)))
    inputs = _inputs(H=3, W=4)
    relative_attention(*inputs, (3, 4), logit_norm=nn.BatchNorm2d(6))
    assert 'fused' in logged[-1][0] and logged[-1][1]['level'] == 10   # logging.DEBUG
    gn = nn.GroupNorm(2, 6)
    out = relative_attention(*inputs, (3, 4), logit_norm=gn)
    assert 'explicit' in logged[-1][0] and 'GroupNorm' in logged[-1][0]
    ref = explicit_relative_attention(*inputs, (3, 4), gn)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="attn_impl='fused' cannot run here.*GroupNorm"):
        relative_attention(*inputs, (3, 4), logit_norm=gn, impl='fused')


def test_module_default_switch(monkeypatch):
    logged = []
    monkeypatch.setattr(dispatch_mod, 'print_log', lambda msg, **kw: logged.append(msg))
    inputs = _inputs(H=2, W=3)
    relative_attention(*inputs, (2, 3))
    assert 'fused' in logged[-1] and 'auto' in logged[-1]  # the default is 'auto'
    with default_attn_impl('explicit'):
        relative_attention(*inputs, (2, 3))
        assert 'explicit' in logged[-1]
        relative_attention(*inputs, (2, 3), impl='fused')   # an argument beats the default
        assert 'fused' in logged[-1]
    relative_attention(*inputs, (2, 3))
    assert 'fused' in logged[-1] and 'auto' in logged[-1]  # restored


def test_bad_arguments():
    inputs = _inputs(H=2, W=3)
    with pytest.raises(ValueError, match="method='fft'"):
        relative_query_logits(inputs[0], inputs[3], inputs[4], (2, 3), method='fft')
    with pytest.raises(ValueError, match=r'rel_w of shape \(5, 2, 4\)'):
        relative_query_logits(inputs[0], inputs[3], torch.randn(5, 2, 4), (2, 3))
    with pytest.raises(ValueError, match=r"attn_impl='flash'.*'auto', 'explicit', 'fused'"):
        relative_attention(*inputs, (2, 3), impl='flash')
    with pytest.raises(ValueError, match=r"kernel='triton'.*'chunked'"):
        relative_attention(*inputs, (2, 3), kernel='triton')
    with pytest.raises(ValueError, match='size'):
        relative_attention(*inputs, None)
    with pytest.raises(ValueError, match='both rel_h and rel_w'):
        relative_attention(*inputs[:4], None, (2, 3))
    with pytest.raises(ValueError, match="attn_impl='x'"):
        attn_mod.set_default_attn_impl('x')
