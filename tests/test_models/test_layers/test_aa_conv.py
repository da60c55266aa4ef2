import copy

import pytest
import torch
import torch.nn.functional as F

from mmattn.models.layers.aa_conv import AAConv2d, aa_depths, sine_position_2d
from mmattn.models.layers.position import slice_relative_table
from mmattn.registry import MODELS

SMALL = dict(num_heads=4, min_key_dims_per_head=3, kappa=0.5, upsilon=0.5, max_size=6)


def _count(m):
    return sum(p.numel() for p in m.parameters())


def _paper_aa(m, x):
    """AA Eq. 3-5 written out with explicit index tables (no rel_to_abs)."""
    parts = [m.conv(x)] if m.conv is not None else []
    a = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False) if m.stride > 1 else x
    n, _, H, W = a.shape
    L = H * W
    Nh, dkh, dvh = m.num_heads, m.dkh, m.dvh
    q, k, v = torch.split(m.qkv_conv(a), [m.dk, m.dk, m.dv], dim=1)
    q = q.reshape(n, Nh, dkh, L) * dkh**-0.5
    k = k.reshape(n, Nh, dkh, L)
    v = v.reshape(n, Nh, dvh, L)
    rw = slice_relative_table(m.rel_width, W)
    rh = slice_relative_table(m.rel_height, H)
    y, xx = torch.arange(L) // W, torch.arange(L) % W
    logits = torch.einsum('bhdi,bhdj->bhij', q, k)
    logits = logits + torch.einsum('bhdi,ijd->bhij', q, rw[xx[None, :] - xx[:, None] + W - 1])
    logits = logits + torch.einsum('bhdi,ijd->bhij', q, rh[y[None, :] - y[:, None] + H - 1])
    o = torch.einsum('bhij,bhdj->bhdi', logits.softmax(-1), v).reshape(n, m.dv, H, W)
    parts.append(m.attn_out(o))
    return torch.cat(parts, 1)


@pytest.mark.parametrize('size', [(4, 4), (3, 5), (5, 3)])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('impl', ['explicit', 'fused'])
def test_matches_paper_formulation(size, stride, impl):
    torch.manual_seed(0)
    m = AAConv2d(8, 16, stride=stride, attn_impl=impl, **SMALL)
    x = torch.randn(2, 8, *size)
    torch.testing.assert_close(m(x), _paper_aa(m, x), rtol=0, atol=1e-5)


@pytest.mark.parametrize('size', [(4, 4), (3, 5), (5, 3), (1, 4)])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('pos_enc', ['relative', 'none'])
def test_fused_equals_explicit(size, stride, pos_enc):
    torch.manual_seed(0)
    base = AAConv2d(8, 16, stride=stride, pos_enc=pos_enc, **SMALL)
    x = torch.randn(2, 8, *size)
    res = {}
    for impl in ('explicit', 'fused'):
        m = copy.deepcopy(base)
        m.attn_impl = impl
        xi = x.clone().requires_grad_()
        out = m(xi)
        loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() / out.numel()**0.5
        loss.backward()
        res[impl] = (out, xi.grad, {n: p.grad for n, p in m.named_parameters()})
    (o0, x0, g0), (o1, x1, g1) = res['explicit'], res['fused']
    torch.testing.assert_close(o1, o0, rtol=0, atol=1e-5)
    torch.testing.assert_close(x1, x0, rtol=0, atol=1e-5)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize('size', [(5, 7), (4, 6), (1, 3)])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('attn_downsample', [False, True])
def test_output_size_matches_conv(size, stride, attn_downsample):
    m = AAConv2d(8, 16, stride=stride, attn_downsample=attn_downsample, **SMALL)
    x = torch.randn(1, 8, *size)
    assert m(x).shape == torch.nn.Conv2d(8, 16, 3, stride, 1)(x).shape


def test_fully_attentional_has_no_conv():
    m = AAConv2d(8, 16, num_heads=4, upsilon=1.0, kappa=0.5, min_key_dims_per_head=2,
                 stride=2)
    assert m.conv is None and m.dv == 16
    assert m(torch.randn(1, 8, 5, 5)).shape == (1, 16, 3, 3)


@pytest.mark.parametrize('pos_enc', ['relative', 'none', 'sine', 'coordconv'])
def test_position_encodings(pos_enc):
    m = AAConv2d(8, 16, pos_enc=pos_enc, **SMALL)
    assert m(torch.randn(2, 8, 3, 5)).shape == (2, 16, 3, 5)
    assert hasattr(m, 'rel_height') == (pos_enc == 'relative')
    assert m.qkv_conv.in_channels == 8 + (3 if pos_enc == 'coordconv' else 0)


def test_sine_position_2d():
    pe = sine_position_2d(8, 3, 4)
    assert pe.shape == (8, 3, 4)
    torch.testing.assert_close(pe[0, :, 0], torch.sin(torch.arange(3.)))   # row, lowest freq
    assert torch.equal(pe[0, :, 0], pe[0, :, 3])                           # constant along x
    torch.testing.assert_close(pe[4, 0, :], torch.sin(torch.arange(4.)))   # column


def test_relative_tables_shared_across_heads_and_init():
    torch.manual_seed(0)
    m = AAConv2d(64, 128, max_size=28)        # paper setting: dk 160 (20 per head), dv 16
    assert (m.dk, m.dv, m.dkh) == (160, 16, 20)
    assert m.rel_width.shape == m.rel_height.shape == (55, 20)
    assert abs(m.rel_width.std().item() - 20**-0.5) < 0.03


@pytest.mark.parametrize('fout,expected', [(128, (160, 16)), (256, (160, 24)), (512, (160, 48)),
                                           (1024, (208, 104))])
def test_depth_rounding(fout, expected):
    assert aa_depths(fout, 0.2, 0.1, 8, 20) == expected


def aa_resnet_params(blocks, kappa=0.2, upsilon=0.1, base=None):
    """torchvision ResNet with every bottleneck 3x3 of stages 2-4 augmented; tables at the
    224-input sizes of the attention (28, 14, 7); the block's bn2 stays."""
    total = base
    for (w, size), n in zip([(128, 28), (256, 14), (512, 7)], blocks):
        m = AAConv2d(w, w, kappa=kappa, upsilon=upsilon, max_size=size)
        total += n * (_count(m) - 9 * w * w)
    return total


def test_aa_resnet50_parameter_count_matches_paper():
    assert aa_resnet_params((4, 6, 3), base=25_557_032) == 25_781_872          # paper 25.8M
    assert aa_resnet_params((4, 6, 3), upsilon=0.2, base=25_557_032) == 24_803_248


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_heads=3, dv=16), r'num_heads=3 must divide dv=16'),
    (dict(dk=44, num_heads=8), r'num_heads=8 must divide dk=44'),
    (dict(dk=80), r'dk=80 gives 10 key dims per head, below min_key_dims_per_head=20'),
    (dict(pos_enc='learned'), r"pos_enc='learned' is not one of \('relative', 'none', 'sine'"),
    (dict(dv=256), r'dv=256 exceeds out_channels=128'),
    (dict(stride=3), r'stride=3 is not supported \(accepted: 1, 2\)'),
    (dict(beyond_max='clip'), r"beyond_max='clip' is not one of"),
    (dict(attn_impl='flash'), r"attn_impl='flash' is not one of"),
])
def test_bad_arguments(kwargs, match):
    args = dict(in_channels=64, out_channels=128)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match) as e:
        AAConv2d(**args)
    assert 'AAConv2d' in str(e.value)


def test_beyond_max():
    x = torch.randn(1, 8, 7, 3)
    assert AAConv2d(8, 16, **dict(SMALL, max_size=4))(x).shape == (1, 16, 7, 3)
    m = AAConv2d(8, 16, beyond_max='error', **dict(SMALL, max_size=4))
    with pytest.raises(ValueError, match='size 7 exceeds the maximum 4'):
        m(x)


def test_registered_and_conv_signature():
    assert MODELS.get('AAConv2d') is AAConv2d
    assert AAConv2d.norm_inside is False
    m = MODELS.build(dict(type='AAConv2d', in_channels=8, out_channels=16, kernel_size=3,
                          stride=2, padding=1, dilation=1, groups=1, bias=False, **SMALL))
    assert m(torch.randn(2, 8, 5, 5)).shape == (2, 16, 3, 3)
