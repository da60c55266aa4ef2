"""Tests of the LA-layer (mmattn/models/layers/la_layer.py). Small inputs only."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch.func import functional_call

from mmattn.models.layers.la_layer import LALayer

NORMS = ('absmax', 'maxmin', 'tanh')
SCOPES = ('image', 'image_axis', 'position')


def _layer(cin=8, cout=8, seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault('num_heads', 2)
    return LALayer(cin, cout, **kwargs)


def _zero_offsets(layer):
    with torch.no_grad():
        layer.offset_head.weight.zero_()
    return layer


def _unfold_heads(layer, t):
    b, _, h, w = t.shape
    k, dil = layer.kernel_size, layer.dilation
    cols = F.unfold(t, k, dilation=dil, padding=(k - 1) // 2 * dil)
    return cols.view(b, layer.num_heads, layer.head_channels, k * k, h * w)


def _attention_from_samples(layer, x, keys, values):
    """Per-head softmax attention of q over given (B, m, d, k*k, N) keys/values."""
    b, _, h, w = x.shape
    m, d = layer.num_heads, layer.head_channels
    q = layer.q_proj(x).view(b, m, d, h * w)
    logits = torch.einsum('bmdn,bmdjn->bmjn', q, keys) / math.sqrt(d)
    attn = logits.softmax(dim=2)
    if layer.value_mode == 'outside':
        v = layer.v_proj(x).view(b, m, d, h * w)
        y = v * torch.einsum('bmjn,bmdjn->bmdn', attn, keys)
    else:
        y = torch.einsum('bmjn,bmdjn->bmdn', attn, values)
    return y.reshape(b, m * d, h, w)


def local_attention_reference(layer, x):
    """Plain k x k local attention with zero padding, built on F.unfold."""
    return _attention_from_samples(layer, x, _unfold_heads(layer, layer.k_proj(x)),
                                   _unfold_heads(layer, layer.v_proj(x)))


def _bilinear(img, py, px):
    """img (C, H, W) read at float pixel coordinates (zeros outside): (C, *py.shape)."""
    _, h, w = img.shape
    y0, x0 = py.floor(), px.floor()
    out = 0
    for oy, wy in ((0, 1 - (py - y0)), (1, py - y0)):
        for ox, wx in ((0, 1 - (px - x0)), (1, px - x0)):
            yy, xx = y0 + oy, x0 + ox
            inside = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)).to(img.dtype)
            val = img[:, yy.clamp(0, h - 1).long(), xx.clamp(0, w - 1).long()]
            out = out + val * (wy * wx * inside)
    return out


def deformable_reference(layer, x):
    """The deformed layer written pixel-explicitly with a hand-made bilinear read."""
    b, _, h, w = x.shape
    k, dil, m, d = layer.kernel_size, layer.dilation, layer.num_heads, layer.head_channels
    r = (k - 1) // 2
    off = layer.offsets(x)  # (B, 2, H, W): dx, dy
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype),
                            indexing='ij')
    keys, values = [], []
    kmap, vmap = layer.k_proj(x), layer.v_proj(x)
    for i in range(b):
        ks, vs = [], []
        for ky in range(k):
            for kx in range(k):
                sy, sx = (ky - r) * dil, (kx - r) * dil
                if layer.offset_anchor == 'query':
                    dx, dy = off[i, 0], off[i, 1]
                else:  # offset of the key's own (integer) pixel; zero outside the image
                    padded = F.pad(off[i], (r * dil, ) * 4)
                    dx = padded[0, ky * dil:ky * dil + h, kx * dil:kx * dil + w]
                    dy = padded[1, ky * dil:ky * dil + h, kx * dil:kx * dil + w]
                py, px = ys + sy + dy, xs + sx + dx
                ks.append(_bilinear(kmap[i], py, px))
                vs.append(_bilinear(vmap[i], py, px))
        keys.append(torch.stack(ks, 1).view(m, d, k * k, h * w))
        values.append(torch.stack(vs, 1).view(m, d, k * k, h * w))
    return _attention_from_samples(layer, x, torch.stack(keys), torch.stack(values))


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize('stride_mode', ['pool_first', 'pool_after'])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('size', [(1, 1), (2, 3), (7, 5), (8, 8), (9, 4)])
def test_output_size_matches_3x3_conv(size, stride, stride_mode):
    layer = _layer(8, 16, stride=stride, stride_mode=stride_mode)
    conv = nn.Conv2d(8, 16, 3, stride=stride, padding=1)
    for batch in (1, 3):
        x = torch.randn(batch, 8, *size)
        assert layer(x).shape == conv(x).shape == (batch, 16, -(-size[0] // stride),
                                                   -(-size[1] // stride))


def test_dilation_and_groups_keep_size():
    layer = _layer(16, 16, dilation=2, padding=2, groups=4)
    assert layer(torch.randn(2, 16, 9, 6)).shape == (2, 16, 9, 6)


def test_pool_first_is_attention_on_pooled_input():
    strided = _layer(8, 8, stride=2)
    plain = _layer(8, 8)
    plain.load_state_dict(strided.state_dict())
    x = torch.randn(2, 8, 7, 6)
    pooled = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(strided(x), plain(pooled))


def test_images_of_a_batch_are_independent():
    # The normaliser's max runs per image, never over the batch.
    layer = _layer(8, 8)
    x = torch.randn(3, 8, 6, 6)
    x[1] *= 10
    torch.testing.assert_close(layer(x)[:1], layer(x[:1]))


# ---------------------------------------------------------------- offsets


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('norm', NORMS)
@pytest.mark.parametrize('shift', [0.0, -5.0])
def test_offsets_stay_in_region(norm, scope, shift):
    layer = _layer(8, 8, offset_norm=norm, offset_norm_scope=scope, dilation=2, padding=2)
    with torch.no_grad():
        layer.offset_head.weight.mul_(1e3)
    # shift=-5 makes every raw offset negative: Eq. 7 as printed then leaves the region.
    layer.offset_head.register_forward_hook(lambda mod, inp, out: out + shift)
    x = torch.randn(2, 8, 9, 7)
    off = layer.offsets(x)
    bound = (layer.region_size - layer.kernel_size) // 2 * layer.dilation
    assert bound == 4
    assert off.abs().max() <= bound + 1e-5
    disp = layer._displacements(off)
    assert disp.abs().max() <= (layer.region_size - 1) // 2 * layer.dilation + 1e-5
    if norm == 'absmax':  # reaches the border: the range is used in full
        assert off.abs().max() > bound - 1e-3


def test_literal_eq7_needs_the_clamp():
    dp = torch.tensor([-5.0, -4.0, -1.0])
    literal = dp / (dp.max() + dp.min().abs())
    assert literal.abs().max() > 1  # max and min share a sign: not a bound


def test_zero_init_blowup_is_avoided():
    layer = _layer(64, 64, num_heads=8)
    x = torch.randn(2, 64, 12, 12)
    (layer(x) * torch.randn(2, 64, 12, 12)).mean().backward()

    def rel(p):
        return (p.grad.norm() / p.norm()).item()

    head, q = rel(layer.offset_head.weight), rel(layer.q_proj.weight)
    assert math.isfinite(head) and head < 50 * q


def test_init_weights_restores_offset_head_after_parent_kaiming():

    class Parent(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Kaiming', layer='Conv2d'))
            self.la = _layer(256, 256, num_heads=8)

    parent = Parent()
    parent.init_weights()
    std = parent.la.offset_head.weight.std().item()
    # Kaiming fan-out would give std 1; ours is hidden ** -0.5 = 1/8.
    assert 0.08 < std < 0.2
    # A second call (mmengine warns) leaves trained weights alone.
    before = parent.la.offset_head.weight.detach().clone()
    parent.la.init_weights()
    torch.testing.assert_close(parent.la.offset_head.weight.detach(), before)


# ---------------------------------------------------------------- maths


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(offset_norm='tanh', offset_anchor='key'),
    dict(offset_norm='maxmin', value_mode='outside'),
    dict(groups=2, dilation=2, padding=2),
    dict(stride=2),
    dict(kernel_size=5, padding=2, region_size=9),
])
def test_zero_offsets_is_plain_local_attention(kwargs):
    layer = _zero_offsets(_layer(8, 8, **kwargs))
    x = torch.randn(2, 8, 7, 5)
    out = layer(x)
    if layer.stride > 1:
        x = F.avg_pool2d(x, 3, layer.stride, 1, count_include_pad=False)
    torch.testing.assert_close(out, local_attention_reference(layer, x))


@pytest.mark.parametrize('anchor', ['query', 'key'])
@pytest.mark.parametrize('dilation', [1, 2])
def test_deformed_sampling_matches_explicit_bilinear(anchor, dilation):
    layer = _layer(8, 8, offset_anchor=anchor, dilation=dilation, padding=dilation)
    x = torch.randn(2, 8, 6, 5)
    assert layer.offsets(x).abs().max() > 0.5  # really deformed
    torch.testing.assert_close(layer(x), deformable_reference(layer, x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(offset_mode='add'),
    dict(offset_mode='add', value_mode='outside'),
    dict(offset_norm='tanh', offset_anchor='key'),
])
def test_gradients_reach_offset_net(kwargs):
    layer = _layer(8, 8, **kwargs)
    layer(torch.randn(2, 8, 6, 6)).square().mean().backward()
    for p in (layer.offset_conv.weight, layer.offset_head.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(offset_norm='tanh', offset_anchor='key', stride=2),
    dict(offset_norm='maxmin', offset_norm_scope='image_axis', stride=2,
         stride_mode='pool_after'),
    dict(offset_mode='add'),
    dict(offset_mode='add', value_mode='outside'),
])
def test_gradcheck_float64(kwargs):
    layer = _layer(4, 4, **kwargs).double()
    x = torch.randn(1, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    if layer.offset_mode == 'sample':
        # Bilinear reads are not differentiable at integer coordinates, and GELU sends some
        # raw offsets to ~0: nudge them off the integers, then check they are fractional
        # (bar the max normaliser's extreme, l * max/(max + eps), where it is ~constant).
        layer.offset_head.register_forward_hook(lambda mod, inp, out: out + 0.37)
        off = layer.offsets(x).detach()
        frac = (off - off.round()).abs()
        assert ((frac > 1e-3) | (off.abs() >= layer.offset_bound - 1e-4)).all()
    head = layer.offset_head.weight.detach().clone().requires_grad_(True)

    def fn(inp, w):
        return functional_call(layer, {'offset_head.weight': w}, (inp, ))

    # fast_mode: checks u^T J v for random u, v instead of every column (1 backward, not 36).
    assert torch.autograd.gradcheck(fn, (x, head), eps=1e-6, atol=1e-5, fast_mode=True)


def test_attention_core_gradcheck():
    # The hand-written backward of the head loop, every input at once.
    from mmattn.models.layers.la_layer import _LocalAttention
    torch.manual_seed(0)
    b, m, d, kk, h, w = 1, 2, 2, 3, 2, 2
    q = torch.randn(b, m, d, h, w, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(b, m, d, kk, h, w, dtype=torch.float64, requires_grad=True)
    values = torch.randn(b, m, d, kk, h, w, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(b, m, kk, h, w, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: _LocalAttention.apply(*t, 0.5), (q, keys, values, bias))
    assert torch.autograd.gradcheck(
        lambda *t: _LocalAttention.apply(*t, None, 0.5), (q, keys, values))


# ---------------------------------------------------------------- size and cost


def test_parameter_count():

    def count(layer):
        return sum(p.numel() for p in layer.parameters())

    # q, k, v: 3 * 64 * 64; offset net: 3x3 conv 64 -> 16 with bias, 1x1 16 -> 2 no bias.
    assert count(LALayer(64, 64)) == 3 * 64 * 64 + 9 * 64 * 16 + 16 + 16 * 2
    # ResNeXt stage 1 (groups 32): q/k/v and the offset conv grouped, head dense.
    assert count(LALayer(128, 128, groups=32)) == 3 * 128 * 4 + 9 * 4 * 32 + 32 + 32 * 2
    assert count(LALayer(64, 64, bias=True, offset_mode='add')) == 21552 + 64 + 64 * 2
    # Table 1 unit: a ResNet-50 stage-1 3x3 conv has 36864 parameters.
    assert count(LALayer(64, 64)) < 9 * 64 * 64


def test_flops():
    layer = LALayer(64, 64)
    n = 56 * 56
    per_pixel = 3 * 64 * 64 + 9 * 64 * 16 + 16 * 2 + 2 * 9 * 64
    assert layer.flops(56, 56) == per_pixel * n
    parts = layer.flops_breakdown(56, 56)
    assert parts['sampling'] == 2 * 4 * 9 * 64 * n and parts['pooling'] == 0
    assert LALayer(64, 64, stride=2).flops(56, 56) == per_pixel * 28 * 28
    assert LALayer(64, 64, stride=2, stride_mode='pool_after').flops(55, 55) == per_pixel * 55**2
    assert LALayer(64, 64, stride=2).flops(55, 55) == per_pixel * 28 * 28


# ---------------------------------------------------------------- arguments and registry


@pytest.mark.parametrize('kwargs, words', [
    (dict(num_heads=7), ['num_heads=7', 'out_channels=64']),
    (dict(offset_norm='l2'), ["offset_norm='l2'", 'absmax', 'maxmin', 'tanh']),
    (dict(offset_norm_scope='batch'), ["offset_norm_scope='batch'", 'image_axis']),
    (dict(offset_mode='shift'), ["offset_mode='shift'", 'sample', 'add']),
    (dict(offset_anchor='pixel'), ["offset_anchor='pixel'", 'query', 'key']),
    (dict(value_mode='inside'), ["value_mode='inside'", 'inside_softmax', 'outside']),
    (dict(stride_mode='strided'), ["stride_mode='strided'", 'pool_first', 'pool_after']),
    (dict(groups=3), ['groups=3']),
    (dict(kernel_size=4, padding=1), ['kernel_size=4', 'odd']),
    (dict(kernel_size=(3, 5)), ['kernel_size=(3, 5)']),
    (dict(padding=0), ['padding=0', '1']),
    (dict(region_size=6), ['region_size=6']),
    (dict(region_size=1), ['region_size=1']),
    (dict(stride=0), ['stride=0']),
    (dict(offset_init_std=0), ['offset_init_std=0', 'absmax']),
    (dict(offset_init_std=-1.0), ['offset_init_std=-1.0']),
    (dict(offset_hidden_ratio=0), ['offset_hidden_ratio=0']),
    (dict(eps=0), ['eps=0']),
])
def test_bad_arguments(kwargs, words):
    with pytest.raises(ValueError) as err:
        LALayer(64, 64, **kwargs)
    for word in words:
        assert word in str(err.value)


def test_bad_argument_types():
    with pytest.raises(TypeError, match='bias'):
        LALayer(64, 64, bias='yes')
    with pytest.raises(TypeError, match='in_channels'):
        LALayer(64.0, 64)


def test_tanh_accepts_zero_init():
    layer = LALayer(8, 8, num_heads=2, offset_norm='tanh', offset_init_std=0)
    assert layer.offsets(torch.randn(1, 8, 4, 4)).abs().max() == 0


def test_registered_and_conv_signature():
    from mmattn.registry import MODELS
    layer = MODELS.build(dict(type='LALayer', in_channels=16, out_channels=16, num_heads=4))
    assert isinstance(layer, LALayer) and LALayer.norm_inside is False
    # The keyword set mmdet's Bottleneck passes to build_conv_layer for conv2.
    layer = LALayer(16, 32, kernel_size=3, stride=(2, 2), padding=(1, 1), dilation=1, groups=1,
                    bias=False)
    assert layer(torch.randn(1, 16, 5, 5)).shape == (1, 32, 3, 3)


def test_build_conv_layer():
    cnn = pytest.importorskip('mmcv.cnn')
    layer = cnn.build_conv_layer(
        dict(type='LALayer', num_heads=4), 16, 16, 3, stride=2, padding=1, dilation=1,
        groups=2, bias=False)
    assert isinstance(layer, LALayer) and layer.groups == 2
    assert layer(torch.randn(1, 16, 7, 7)).shape == (1, 16, 4, 4)


def test_runs_on_meta_device():
    """Shape-only runs (meta tensors, as for memory planning) give the conv's output shape."""
    with torch.device('meta'):
        layer = LALayer(16, 16, num_heads=4)
        y = layer(torch.randn(1, 16, 9, 11))
    assert y.device.type == 'meta' and y.shape == (1, 16, 9, 11)
