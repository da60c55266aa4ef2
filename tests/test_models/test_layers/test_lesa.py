import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F

from mmattn.models.layers.lesa import LESA
from mmattn.models.layers.position import rel_to_abs_gather
from mmattn.registry import MODELS


def _count(m):
    return sum(p.numel() for p in m.parameters())


def _randomise(m, seed=0):
    """Non-trivial BN affine/running stats, so every path is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.weight.uniform_(0.5, 1.5, generator=g)
                mod.bias.normal_(0, 0.2, generator=g)
                mod.running_mean.normal_(0, 0.2, generator=g)
                mod.running_var.uniform_(0.5, 2.0, generator=g)
    return m


# ----------------------------------------------------------------------------------------------
# the official formulation, re-typed from the LESA note / official LESA.py semantics, fixed size
# ----------------------------------------------------------------------------------------------
def _official_relative_logits_1d(q, rel):
    # q: (b, g, x, y, d); logits over offsets of y, rel_to_abs, expanded over the key's x
    b, g, X, Y, _ = q.shape
    logits = torch.einsum('bgxyd,rd->bgxyr', q, rel)
    logits = rel_to_abs_gather(logits)                      # (b, g, x, y, y_key)
    return logits[:, :, :, None].expand(b, g, X, X, Y, Y)   # (b, g, x, x_key, y, y_key)


def _official_binary(m, x):
    N, C, H, W = x.shape
    L = H * W
    G, cq, cv = m.num_heads, m.qk_planes, m.v_planes
    qkv = m.bn_qkv(m.qkv_transform(x.view(N, C, L))[..., None])[..., 0]
    q, k, v = torch.split(qkv.reshape(N, G, 2 * cq + cv, L), [cq, cq, cv], dim=2)
    qk = torch.einsum('bgci,bgcj->bgij', q, k)
    if m.pe_type == 'detection_qr':
        qx = q.reshape(N, G, cq, H, W).permute(0, 1, 3, 4, 2)           # b g x(row) y(col) d
        rw = _official_relative_logits_1d(qx, m.rel_width)             # b g x i y j
        rw = rw.permute(0, 1, 2, 4, 3, 5).reshape(N, G, L, L)          # (x y) (i j)
        rh = _official_relative_logits_1d(qx.transpose(2, 3), m.rel_height)  # b g y j x i
        rh = rh.permute(0, 1, 4, 2, 5, 3).reshape(N, G, L, L)          # (x y) (i j)
        sim = m.bn_similarity(torch.cat([qk, rw + rh], 1)).view(N, 2, G, L, L).sum(1)
        attn = sim.softmax(-1)
        sv = torch.einsum('bgij,bgcj->bgci', attn, v)
        return m.bn_output(sv.reshape(N, m.out_channels, L)[..., None])[..., 0].view(N, -1, H, W)
    K = L
    query_index = torch.arange(K)[None, :]
    key_index = torch.arange(K)[:, None]
    flatten_index = (key_index - query_index + K - 1).view(-1)
    emb = torch.index_select(m.relative, 1, flatten_index).view(2 * cq + cv, K, K)
    q_emb, k_emb, v_emb = torch.split(emb, [cq, cq, cv], dim=0)
    qr = torch.einsum('bgci,cij->bgij', q, q_emb)
    kr = torch.einsum('bgci,cij->bgij', k, k_emb).transpose(2, 3)
    sim = m.bn_similarity(torch.cat([qk, qr, kr], 1)).view(N, 3, G, K, K).sum(1)
    attn = sim.softmax(-1)
    sv = torch.einsum('bgij,bgcj->bgci', attn, v)
    sve = torch.einsum('bgij,cij->bgci', attn, v_emb)
    stacked = torch.cat([sv, sve], dim=-1).view(N, 2 * m.out_channels, K)
    out = m.bn_output(stacked[..., None])[..., 0].view(N, m.out_channels, 2, K).sum(-2)
    return out.view(N, -1, H, W)


def _official_forward(m, x):
    binary = _official_binary(m, x)
    unary = m.bn_x(m.x_transform(x))
    gate = torch.sigmoid(m.projection(m.reasoning(torch.cat([unary, binary], 1))))
    out = gate * binary + unary
    return F.avg_pool2d(out, 2) if m.stride > 1 else out


@pytest.mark.parametrize('pe_type', ['detection_qr', 'classification'])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('training', [True, False])
def test_matches_official_formulation_at_fixed_size(pe_type, stride, training):
    torch.manual_seed(0)
    F_ = 4
    m = _randomise(LESA(32, 32, stride=stride, max_size=F_ // stride, pe_type=pe_type)).train(training)
    ref_m = copy.deepcopy(m)
    x = torch.randn(2, 32, F_, F_)
    out = m(x)
    ref = _official_forward(ref_m, x)
    assert out.shape == ref.shape == (2, 32, F_ // stride, F_ // stride)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    for (name, b), (_, rb) in zip(m.named_buffers(), ref_m.named_buffers()):
        torch.testing.assert_close(b, rb, rtol=1e-5, atol=1e-6, msg=name)


def _fwd_bwd(m, x):
    x = x.detach().clone().requires_grad_()
    out = m(x)
    # O(1) gradients, so atol=1e-5 is a relative check of about 1e-5 as well
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() / out.numel()**0.5
    loss.backward()
    grads = {n: (torch.zeros_like(p) if p.grad is None else p.grad.clone())
             for n, p in m.named_parameters()}
    return out, x.grad, grads, {n: b.clone() for n, b in m.named_buffers()}


@pytest.mark.parametrize('size', [(4, 4), (3, 5), (5, 3)])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('training', [True, False])
def test_fused_equals_explicit(size, stride, training):
    torch.manual_seed(0)
    base = _randomise(LESA(32, 32, stride=stride, max_size=6)).train(training)
    x = torch.randn(2, 32, *size)
    res = {}
    for impl in ('explicit', 'fused'):
        m = copy.deepcopy(base)
        m.attn_impl = impl
        res[impl] = _fwd_bwd(m, x)
    (o0, x0, g0, b0), (o1, x1, g1, b1) = res['explicit'], res['fused']
    torch.testing.assert_close(o1, o0, rtol=0, atol=1e-5)
    torch.testing.assert_close(x1, x0, rtol=0, atol=1e-5)
    assert g0.keys() == g1.keys()
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=0, atol=1e-5, msg=name)
    for name in b0:
        torch.testing.assert_close(b1[name], b0[name], rtol=1e-5, atol=1e-6, msg=name)
    if training:
        assert int(b1['bn_similarity.num_batches_tracked']) == 1


@pytest.mark.parametrize('pe_type', ['detection_qr', 'classification'])
@pytest.mark.parametrize('size', [(5, 7), (4, 6), (1, 3), (7, 5)])
@pytest.mark.parametrize('stride', [1, 2])
def test_output_size_matches_3x3_conv(pe_type, size, stride):
    m = LESA(16, 16, stride=stride, max_size=8, pe_type=pe_type).eval()
    x = torch.randn(1, 16, *size)
    conv = torch.nn.Conv2d(16, 16, 3, stride=stride, padding=1)
    assert m(x).shape == conv(x).shape


def test_stride2_odd_size_pools_partial_windows():
    m = LESA(16, 16, stride=2, max_size=8, fusion='none').eval()
    x = torch.randn(1, 16, 3, 5)
    full = copy.deepcopy(m)
    full.stride = 1
    dense = full(x)
    out = m(x)
    torch.testing.assert_close(out[..., -1, -1], dense[..., 2, 4])       # 1-cell window
    torch.testing.assert_close(out[..., 0, -1], dense[..., 0:2, 4].mean(-1))


def test_fusion_variants_param_differences():
    w = 64
    dyn, sta, none = (LESA(w, w, fusion=f, max_size=4) for f in ('dynamic', 'static', 'none'))
    # dynamic - static = gate: 1x1 (2w->w) + BN(w) + 1x1 (w->w) + BN(w)
    assert _count(dyn) - _count(sta) == 2 * w * w + 2 * w + w * w + 2 * w
    # static - none = unary: grouped 3x3 (groups 8) + 1x1 + BN
    assert _count(sta) - _count(none) == 9 * w * (w // 8) + w * w + 2 * w
    assert not hasattr(none, 'x_transform') and not hasattr(sta, 'reasoning')
    x = torch.randn(1, w, 3, 3)
    for m in (dyn, sta, none):
        assert m.eval()(x).shape == x.shape


def test_official_parameter_names_and_shapes():
    m = LESA(256, 256, max_size=64)
    shapes = {n: tuple(p.shape) for n, p in m.state_dict().items()}
    assert shapes['qkv_transform.weight'] == (512, 256, 1)
    assert shapes['bn_qkv.weight'] == (512, )
    assert shapes['bn_similarity.weight'] == (16, )
    assert shapes['bn_output.weight'] == (256, )
    assert shapes['rel_height'] == shapes['rel_width'] == (127, 16)
    assert shapes['x_transform.0.weight'] == (256, 32, 3, 3)
    assert shapes['x_transform.1.weight'] == (256, 256, 1, 1)
    assert shapes['bn_x.running_var'] == (256, )
    assert shapes['reasoning.1.weight'] == (256, 512, 1, 1)
    assert shapes['reasoning.2.weight'] == (256, )
    assert shapes['projection.0.weight'] == (256, 256, 1, 1)
    assert shapes['projection.1.weight'] == (256, )
    c = LESA(256, 256, max_size=14, pe_type='classification').state_dict()
    assert tuple(c['relative'].shape) == (64, 2 * 196 - 1)
    assert tuple(c['bn_similarity.weight'].shape) == (24, )
    assert tuple(c['bn_output.weight'].shape) == (512, )


def lesa_r50_classification_params(fusion='dynamic'):
    """torchvision R50 (25,557,032) with the official classification layout: layer3[1..5] and
    layer4[0..2] (stage 4 at stride 1, 14x14 at 224) swap conv2 + bn2 for LESA."""
    total = 25_557_032
    for w in [256] * 5 + [512] * 3:
        m = LESA(w, w, max_size=14, pe_type='classification', fusion=fusion)
        total += _count(m) - (9 * w * w + 2 * w)
    return total


def test_lesa_r50_parameter_count_matches_official():
    assert lesa_r50_classification_params() == 23_777_512
    # the paper's ablations: SA-R50 18.1M (Table 2), static LESA 20.43M (Table 6; we get
    # 20.42M: the paper's figure is probably rounded up)
    assert lesa_r50_classification_params('none') == 18_050_792
    assert lesa_r50_classification_params('static') == 20_423_912


def test_detection_position_parameter_count_matches_official():
    # layer3[1..5] at 64 (1024 input), layer4[0] a stride-2 LESA (output 32) attending at its
    # input 64, layer4[1..2] at 32: max_size is each block's output size, as in the configs
    layout = [(256, 64, 1)] * 5 + [(512, 32, 2)] + [(512, 32, 1)] * 2
    pos = 0
    for w, size, stride in layout:
        m = LESA(w, w, stride=stride, max_size=size)
        pos += m.rel_height.numel() + m.rel_width.numel()
        if stride == 2:
            assert m.rel_height.shape[0] == 2 * 64 - 1  # the official layer4[0] table
    assert pos == 36_512


def test_beyond_max():
    x = torch.randn(1, 16, 5, 6)
    m = LESA(16, 16, max_size=4).eval()
    assert m(x).shape == x.shape                          # interpolated tables
    m_err = LESA(16, 16, max_size=4, beyond_max='error').eval()
    with pytest.raises(ValueError, match='size 5 exceeds the maximum 4'):
        m_err(x)
    c = LESA(16, 16, max_size=2, pe_type='classification', beyond_max='error').eval()
    with pytest.raises(ValueError, match='size 30 exceeds the maximum 4'):
        c(x)


def test_classification_cannot_be_forced_fused():
    m = LESA(16, 16, max_size=3, pe_type='classification', attn_impl='fused')
    with pytest.raises(ValueError, match="attn_impl='fused' cannot run here.*classification"):
        m(torch.randn(1, 16, 3, 3))


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_heads=7), r'num_heads=7 must divide out_channels=64'),
    (dict(num_heads=8, out_channels=72), r'num_heads=8 must divide out_channels=72'),
    (dict(pe_type='sine'), r"pe_type='sine' is not one of \('detection_qr', 'classification'\)"),
    (dict(fusion='gated'), r"fusion='gated' is not one of \('dynamic', 'static', 'none'\)"),
    (dict(unary='dcn2'), r"unary='dcn2' is not one of \('conv', 'dcn'\)"),
    (dict(kernel_size=5), r'kernel_size=5 is not supported \(accepted: 3\)'),
    (dict(stride=3), r'stride=3 is not supported \(accepted: 1, 2\)'),
    (dict(groups=32), r'groups=32 is not supported \(accepted: 1'),
    (dict(bias=True), r'bias=True is not supported \(accepted: False\)'),
    (dict(beyond_max='wrap'), r"beyond_max='wrap' is not one of \('interpolate', 'error'\)"),
    (dict(attn_impl='flash'), r"attn_impl='flash' is not one of"),
    (dict(max_size=0), r'max_size'),
])
def test_bad_arguments(kwargs, match):
    args = dict(in_channels=64, out_channels=64)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match) as e:
        LESA(**args)
    assert 'LESA' in str(e.value)


def test_registered_and_conv_signature():
    assert MODELS.get('LESA') is LESA
    assert LESA.norm_inside is True
    m = MODELS.build(dict(type='LESA', in_channels=16, out_channels=16, kernel_size=3,
                          stride=1, padding=1, dilation=1, groups=1, bias=False, max_size=4))
    assert m(torch.randn(2, 16, 4, 4)).shape == (2, 16, 4, 4)


def test_dilation_keeps_size():
    m = LESA(16, 16, dilation=2, padding=2, max_size=6).eval()
    assert m.x_transform[0].dilation == (2, 2)
    assert m(torch.randn(1, 16, 5, 6)).shape == (1, 16, 5, 6)


def test_sync_bn_config_builds():
    m = LESA(16, 16, max_size=4, norm_cfg=dict(type='SyncBN'))
    assert isinstance(m.bn_similarity, torch.nn.SyncBatchNorm)


@pytest.mark.skipif(importlib.util.find_spec('mmcv') is None, reason='mmcv missing')
def test_dcn_unary_zero_offsets_equals_conv():
    pytest.importorskip('mmcv.ops')
    from mmcv.ops import DeformConv2dPack
    torch.manual_seed(0)
    m = LESA(16, 16, unary='dcn', max_size=4).eval()
    assert isinstance(m.x_transform[0], DeformConv2dPack)
    assert m.x_transform[0].deform_groups == 1 and m.x_transform[0].groups == 8
    assert m.x_transform[0].conv_offset.weight.abs().sum() == 0
    assert m.x_transform[0].conv_offset.out_channels == 18
    c = LESA(16, 16, unary='conv', max_size=4).eval()
    c.load_state_dict({k: v for k, v in m.state_dict().items() if 'conv_offset' not in k})
    x = torch.randn(1, 16, 3, 5)
    torch.testing.assert_close(m(x), c(x), rtol=0, atol=1e-5)
    assert _count(m) - _count(c) == 18 * 16 * 9 + 18
