"""The LA-layer's fused CPU kernel (mmattn/ops/csrc/la_attn.cpp, ``sample_impl='ext'``) against
its grid_sample path: the same outputs and gradients (input, every parameter, the offsets).
Small inputs only."""
import pytest
import torch
import torch.nn.functional as F

from mmattn.models.layers import la_layer as la_mod
from mmattn.models.layers.la_layer import LALayer
from mmattn.ops import ext_available

needs_ext = pytest.mark.skipif(
    not ext_available('la_attn_fwd'),
    reason='mmattn._ext with la_attn_fwd is not built (python setup.py build_ext --inplace)')

# (constructor kwargs, input shape): odd sizes, both stride modes, dilation 2, several head
# widths (16 and 32 take the unrolled kernels, 6 and 8 the generic one), groups, kernel 5, and
# a region of 11 (offsets up to 4 px on a 5x6 map: whole windows leave the image)
CASES = [
    (dict(num_heads=2), (2, 64, 9, 11)),
    (dict(num_heads=4), (1, 64, 7, 10)),
    (dict(num_heads=3), (2, 18, 8, 7)),
    (dict(num_heads=4, stride=2), (1, 32, 13, 10)),
    (dict(num_heads=4, stride=2, stride_mode='pool_after'), (1, 32, 11, 9)),
    (dict(num_heads=2, dilation=2, padding=2), (2, 64, 12, 9)),
    (dict(num_heads=4, groups=4), (1, 64, 7, 8)),
    (dict(num_heads=2, kernel_size=5, padding=2), (1, 32, 9, 8)),
    (dict(num_heads=2, region_size=11), (2, 32, 5, 6)),
]


def _run(layer, x, g, impl):
    """Output, x's gradient, parameter gradients and the offsets' gradient of one path."""
    layer.sample_impl = impl
    for p in layer.parameters():
        p.grad = None
    x = x.clone().requires_grad_()
    captured = {}
    offsets = layer.offsets

    def keep(t):
        out = offsets(t)
        out.retain_grad()
        captured['offsets'] = out
        return out

    layer.offsets = keep
    try:
        y = layer(x)
        (y * g).sum().backward()
    finally:
        del layer.offsets
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return y.detach(), x.grad, grads, captured['offsets'].grad, captured['offsets'].detach()


def _compare(kwargs, shape, dtype, rtol):
    torch.manual_seed(0)
    b, cin, h, w = shape
    layer = LALayer(cin, cin, **kwargs).to(dtype)
    x = torch.randn(*shape, dtype=dtype)
    s = layer.stride
    g = torch.randn(b, cin, -(-h // s), -(-w // s), dtype=dtype)
    ref = _run(layer, x, g, 'grid_sample')
    ext = _run(layer, x, g, 'ext')

    def close(name, a, r):
        err = (a - r).abs().max().item()
        scale = r.abs().max().item()
        assert err <= rtol * max(scale, 1e-30), f'{name}: max error {err:.3g} (scale {scale:.3g})'

    close('output', ext[0], ref[0])
    close('input gradient', ext[1], ref[1])
    for name in ref[2]:
        close(f'{name} gradient', ext[2][name], ref[2][name])
    close('offset gradient', ext[3], ref[3])
    return ref


@needs_ext
@pytest.mark.parametrize('kwargs,shape', CASES)
def test_fused_equals_grid_sample_float64(kwargs, shape):
    ref = _compare(kwargs, shape, torch.float64, 1e-12)
    offsets = ref[4]
    assert offsets.abs().max() > 0.5  # the windows are really moved
    if kwargs.get('region_size') == 11:  # some windows leave the 5x6 map entirely
        assert offsets.abs().max() > 3


@needs_ext
@pytest.mark.parametrize('kwargs,shape', CASES[:1] + CASES[3:6])
def test_fused_equals_grid_sample_float32(kwargs, shape):
    _compare(kwargs, shape, torch.float32, 1e-5)


def _reference_op(qkv, offsets, k, dil, scale):
    """The kernel's maths through LALayer's grid_sample path: qkv (B, H, W, 3, m, d)."""
    b, h, w, _, m, d = qkv.shape
    layer = LALayer(m * d, m * d, kernel_size=k, padding=dil * (k - 1) // 2, dilation=dil,
                    num_heads=m, region_size=k + 4)
    q, key, v = (qkv[:, :, :, i].permute(0, 3, 4, 1, 2).reshape(b, m * d, h, w)
                 for i in range(3))
    keys, values = layer._sample([key, v], layer._displacements(offsets))
    out = la_mod._LocalAttention.apply(q.view(b, m, d, h, w), keys, values, None, scale)
    return out.permute(0, 3, 4, 1, 2)  # (B, H, W, m, d)


# float64 runs the generic code; float32 with k=3, dilation 1 and d in 8/16/32/64 the unrolled
# specialisations (the others generic)
OP_CASES = [(3, 1, d, 2.0, dt) for d in (8, 16, 32, 64) for dt in ('float64', 'float32')] + [
    (3, 2, 16, 3.0, 'float64'), (3, 2, 16, 3.0, 'float32'), (5, 1, 5, 2.0, 'float64'),
    (5, 1, 32, 2.0, 'float32'), (3, 1, 8, 7.0, 'float64'), (3, 1, 32, 7.0, 'float32')]


@needs_ext
@pytest.mark.parametrize('k,dil,d,amp,dtype', OP_CASES)
def test_op_equals_reference(k, dil, d, amp, dtype):
    """The operator alone, offsets up to ``amp`` px (7 px: windows entirely outside)."""
    torch.manual_seed(1)
    b, h, w, m = 2, 5, 7, 2
    dtype = getattr(torch, dtype)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    qkv = torch.randn(b, h, w, 3, m, d, dtype=dtype, requires_grad=True)
    off = ((torch.rand(b, 2, h, w, dtype=dtype) * 2 - 1) * amp).requires_grad_()
    g = torch.randn(b, h, w, m, d, dtype=dtype)
    scale = d**-0.5
    ref = _reference_op(qkv, off, k, dil, scale)
    ref_grads = torch.autograd.grad((ref * g).sum(), (qkv, off))
    out = torch.ops.mmattn.la_attn_fwd(qkv, off, k, dil, scale)
    grads = torch.ops.mmattn.la_attn_bwd(g, qkv, off, k, dil, scale)
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    torch.testing.assert_close(grads[0], ref_grads[0], rtol=tol, atol=tol)
    torch.testing.assert_close(grads[1], ref_grads[1], rtol=tol, atol=tol)
    # strided views are read as they are (d contiguous): a permuted copy gives the same
    strided = qkv.detach().permute(0, 2, 1, 3, 4, 5).contiguous().permute(0, 2, 1, 3, 4, 5)
    torch.testing.assert_close(torch.ops.mmattn.la_attn_fwd(strided, off, k, dil, scale), out,
                               rtol=0, atol=0)


@needs_ext
def test_op_rejects_bad_input():
    qkv = torch.randn(1, 4, 5, 3, 2, 8)
    off = torch.zeros(1, 2, 4, 5)
    op = torch.ops.mmattn.la_attn_fwd
    with pytest.raises(RuntimeError, match=r'qkv must be \(B, H, W, 3, num_heads'):
        op(qkv[:, :, :, :2], off, 3, 1, 1.0)
    with pytest.raises(RuntimeError, match=r'offsets must be \(B, 2, H, W\) = \(1, 2, 4, 5\)'):
        op(qkv, off[:, :, :3], 3, 1, 1.0)
    with pytest.raises(RuntimeError, match='kernel_size must be odd'):
        op(qkv, off, 4, 1, 1.0)
    with pytest.raises(RuntimeError, match='dilation must be >= 1'):
        op(qkv, off, 3, 0, 1.0)
    with pytest.raises(RuntimeError, match='share one dtype'):
        op(qkv, off.double(), 3, 1, 1.0)
    with pytest.raises(RuntimeError, match='float32 or float64'):
        op(qkv.half(), off.half(), 3, 1, 1.0)
    with pytest.raises(RuntimeError, match=r'dout must be \(B, H, W, num_heads, head_channels\)'):
        torch.ops.mmattn.la_attn_bwd(torch.zeros(1, 4, 5, 2, 7), qkv, off, 3, 1, 1.0)


def _count_fused(monkeypatch):
    calls = []
    apply = la_mod._FusedLocalAttention.apply

    def counted(*args):
        calls.append(1)
        return apply(*args)

    monkeypatch.setattr(la_mod._FusedLocalAttention, 'apply', counted)
    return calls


@needs_ext
def test_auto_takes_the_kernel_only_where_it_applies(monkeypatch):
    calls = _count_fused(monkeypatch)
    torch.manual_seed(0)
    x = torch.randn(1, 16, 6, 7)
    LALayer(16, 16, num_heads=2)(x)
    assert len(calls) == 1
    for kwargs in (dict(offset_mode='add'), dict(offset_anchor='key'),
                   dict(value_mode='outside'), dict(sample_impl='grid_sample')):
        LALayer(16, 16, num_heads=2, **kwargs)(x)
    assert len(calls) == 1
    layer = LALayer(16, 16, num_heads=2)
    layer.record_attention = True  # the maps need the sampled keys: grid_sample
    layer(x)
    torch.jit.trace(LALayer(16, 16, num_heads=2).eval(), x, check_trace=False)
    assert len(calls) == 1


@needs_ext
def test_autocast_and_bfloat16():
    torch.manual_seed(0)
    layer = LALayer(32, 32, num_heads=2)
    x = torch.randn(1, 32, 7, 9)
    outs = {}
    for impl in ('grid_sample', 'ext'):
        layer.sample_impl = impl
        with torch.autocast('cpu', dtype=torch.bfloat16):
            outs[impl] = layer(x)
    assert outs['ext'].dtype == outs['grid_sample'].dtype
    torch.testing.assert_close(outs['ext'].float(), outs['grid_sample'].float(), rtol=0.05,
                               atol=0.05)
    layer = layer.to(torch.bfloat16)
    layer.sample_impl = 'ext'
    y = layer(x.bfloat16())
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert torch.isfinite(layer.q_proj.weight.grad.float()).all()


def test_fallback_without_the_extension(monkeypatch):
    """MMATTN_DISABLE_EXT=1 (an unbuilt extension): 'auto' runs on grid_sample, 'ext' says
    why it cannot run."""
    torch.manual_seed(0)
    layer = LALayer(16, 16, num_heads=2).double()
    x = torch.randn(1, 16, 6, 7, dtype=torch.float64, requires_grad=True)
    with_ext = layer(x) if ext_available('la_attn_fwd') else None
    monkeypatch.setenv('MMATTN_DISABLE_EXT', '1')
    calls = _count_fused(monkeypatch)
    y = layer(x)
    y.sum().backward()
    assert not calls and x.grad is not None
    if with_ext is not None:
        torch.testing.assert_close(y, with_ext, rtol=1e-12, atol=1e-12)
    layer.sample_impl = 'ext'
    with pytest.raises(RuntimeError, match="sample_impl='ext'.*MMATTN_DISABLE_EXT"):
        layer(x)


def test_sample_impl_is_validated():
    with pytest.raises(ValueError, match=r"sample_impl='fast' is not one of \('auto', "
                       r"'grid_sample', 'ext'\)"):
        LALayer(16, 16, num_heads=2, sample_impl='fast')
    with pytest.raises(ValueError, match="sample_impl='ext' needs the default reading"):
        LALayer(16, 16, num_heads=2, offset_mode='add', sample_impl='ext')
    assert "sample_impl='grid_sample'" in repr(LALayer(16, 16, sample_impl='grid_sample'))
    assert 'sample_impl' not in repr(LALayer(16, 16))


@needs_ext
def test_ext_refuses_non_cpu_input():
    layer = LALayer(16, 16, num_heads=2, sample_impl='ext').to('meta')
    with pytest.raises(ValueError, match='runs on CPU tensors'):
        layer(torch.empty(1, 16, 6, 7, device='meta'))


def test_fused_saves_less_than_grid_sample():
    """Not a timing: the kernel keeps no sampled keys/values for backward (memory note)."""
    if not ext_available('la_attn_fwd'):
        pytest.skip('mmattn._ext with la_attn_fwd is not built')
    torch.manual_seed(0)
    layer = LALayer(32, 32, num_heads=2)
    x = torch.randn(1, 32, 16, 16)

    def saved_bytes(impl):
        layer.sample_impl = impl
        total = []

        def pack(t):
            total.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x)
        return sum(total)

    assert saved_bytes('ext') < 0.5 * saved_bytes('grid_sample')


def test_unfold_geometry_matches_grid_sample_at_zero_offsets():
    """Sanity of the reference itself: zero offsets sample the plain k x k window."""
    torch.manual_seed(0)
    layer = LALayer(8, 8, num_heads=2, sample_impl='grid_sample')
    t = torch.randn(1, 8, 5, 6)
    disp = layer._displacements(torch.zeros(1, 2, 5, 6))
    sampled = layer._sample([t], disp)[0]
    unfolded = F.unfold(t, 3, padding=1).view(1, 2, 4, 9, 5, 6)
    torch.testing.assert_close(sampled, unfolded)
