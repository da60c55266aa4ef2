"""External Attention: the operator against the paper's equations, the residual block, the
multi-head variant and the mmdet ResNet plugin."""
import math

import pytest
import torch

from mmattn.models.layers.external_attention import (ExternalAttention,
                                                      ExternalAttentionBlock,
                                                      MultiHeadExternalAttention,
                                                      double_normalization)


def paper_external_attention(feat, m_k, m_v, eps=1e-9):
    """Eq. 5-6 of the paper written out for one sample, in float64.

    feat: (N, C) rows are positions; m_k, m_v: (S, C) memories.
    A = F M_k^T; alpha_ij = exp(a_ij) / sum_k exp(a_kj)  (softmax over the N positions);
    alpha_ij <- alpha_ij / sum_k alpha_ik               (l1 over the S slots); out = A M_v.
    """
    feat, m_k, m_v = feat.double(), m_k.double(), m_v.double()
    n = feat.shape[0]
    a = feat @ m_k.t()  # (N, S)
    a = a - a.max(dim=0, keepdim=True).values  # stabilise; the softmax is shift-invariant
    e = torch.exp(a)
    col = torch.zeros_like(a)
    for j in range(a.shape[1]):
        col[:, j] = e[:, j] / e[:, j].sum()
    alpha = torch.zeros_like(col)
    for i in range(n):
        alpha[i] = col[i] / (eps + col[i].sum())
    return alpha @ m_v  # (N, C)


def test_double_normalization_sums():
    logits = torch.randn(2, 5, 7)  # (B, S, N)
    attn = double_normalization(logits, token_dim=2, memory_dim=1)
    torch.testing.assert_close(attn.sum(dim=1), torch.ones(2, 7))
    assert (attn >= 0).all()


@pytest.mark.parametrize('hw', [(5, 7), (4, 4)])
def test_external_attention_matches_paper(hw):
    torch.manual_seed(0)
    c, s = 12, 8
    ea = ExternalAttention(c, memory_size=s)
    # train independently: break the transposed init so a swap of M_k / M_v would show
    with torch.no_grad():
        ea.mv.weight.add_(0.3 * torch.randn_like(ea.mv.weight))
    x = torch.randn(2, c, *hw)
    out = ea(x)
    assert out.shape == x.shape
    m_k = ea.mk.weight[:, :, 0]  # (S, C)
    m_v = ea.mv.weight[:, :, 0].t()  # (C, S) -> (S, C)
    for b in range(2):
        feat = x[b].flatten(1).t()  # (N, C)
        ref = paper_external_attention(feat, m_k, m_v)  # (N, C)
        torch.testing.assert_close(out[b].flatten(1).t().double(), ref, rtol=1e-5, atol=1e-6)


def test_external_attention_3d_input_and_errors():
    ea = ExternalAttention(6, memory_size=4)
    x = torch.randn(3, 6, 10)
    assert ea(x).shape == (3, 6, 10)
    with pytest.raises(ValueError, match='expected input'):
        ea(torch.randn(3, 5, 10))
    with pytest.raises(ValueError, match='memory_size=0'):
        ExternalAttention(6, memory_size=0)
    with pytest.raises(TypeError, match='channels'):
        ExternalAttention(6.0)


def test_memory_init_is_transpose_and_independent():
    torch.manual_seed(0)
    ea = ExternalAttention(16, memory_size=8)
    assert ea.mk.weight.shape == (8, 16, 1) and ea.mv.weight.shape == (16, 8, 1)
    torch.testing.assert_close(ea.mv.weight, ea.mk.weight.permute(1, 0, 2))
    # official std sqrt(2 / C), loose bound for 128 samples
    assert abs(ea.mk.weight.std().item() - math.sqrt(2 / 16)) < 0.1
    # separate parameters with separate storage
    assert ea.mk.weight is not ea.mv.weight
    assert ea.mk.weight.data_ptr() != ea.mv.weight.data_ptr()
    assert len(list(ea.parameters())) == 2
    # an update of one leaves the other
    opt = torch.optim.SGD(ea.parameters(), lr=1.0)
    ea(torch.randn(2, 16, 3, 3)).pow(2).sum().backward()
    mv_before = ea.mv.weight.detach().clone()
    ea.mv.weight.grad = None
    opt.step()
    torch.testing.assert_close(ea.mv.weight, mv_before)
    assert not torch.allclose(ea.mv.weight, ea.mk.weight.permute(1, 0, 2))
    # init_weights restores the relation (after a parent's generic init)
    ea.init_weights()
    torch.testing.assert_close(ea.mv.weight, ea.mk.weight.permute(1, 0, 2))


def test_block_forward_backward_and_official_structure():
    torch.manual_seed(0)
    blk = ExternalAttentionBlock(8, memory_size=4)
    x = torch.randn(2, 8, 5, 6, requires_grad=True)
    out = blk(x)
    assert out.shape == x.shape and (out >= 0).all()  # trailing ReLU
    out.sum().backward()
    assert x.grad is not None and blk.ea.mk.weight.grad is not None
    assert blk.conv_in.bias is not None and blk.conv_out.bias is None
    assert blk.norm_name == 'bn' and isinstance(blk.norm, torch.nn.BatchNorm2d)
    # the forward is exactly act(x + norm(conv_out(EA(conv_in(x)))))
    blk.eval()
    with torch.no_grad():
        ref = torch.relu(x + blk.norm(blk.conv_out(blk.ea(blk.conv_in(x)))))
        torch.testing.assert_close(blk(x), ref)


def test_block_identity_option_and_norm_cfg():
    torch.manual_seed(0)
    blk = ExternalAttentionBlock(8, act_cfg=None, zero_init=True).eval()
    x = torch.randn(1, 8, 3, 3)
    torch.testing.assert_close(blk(x), x)
    gn = ExternalAttentionBlock(8, norm_cfg=dict(type='GN', num_groups=2))
    assert isinstance(gn.norm, torch.nn.GroupNorm)
    nonorm = ExternalAttentionBlock(8, norm_cfg=None)
    assert nonorm.norm is None and nonorm.conv_out.bias is not None
    with pytest.raises(TypeError, match='norm_cfg'):
        ExternalAttentionBlock(8, norm_cfg='BN')


def per_head_reference(mhea, x):
    """Alg. 2 written head by head: every head uses the same M_k / M_v."""
    B, N, _ = x.shape
    h = mhea.expand(x)  # (B, N, H * d)
    d = mhea.head_dims
    heads = []
    for i in range(mhea.num_heads):
        xi = h[:, :, i * d:(i + 1) * d]  # (B, N, d)
        a = xi @ mhea.mk.weight.t() + mhea.mk.bias  # (B, N, S)
        a = torch.softmax(a, dim=1)  # over the N tokens
        a = a / (1e-9 + a.sum(dim=2, keepdim=True))  # over the S slots
        heads.append(a @ mhea.mv.weight.t() + mhea.mv.bias)  # (B, N, d)
    return mhea.proj(torch.cat(heads, dim=-1))


def test_multi_head_shapes_and_per_head_loop():
    torch.manual_seed(0)
    mhea = MultiHeadExternalAttention(32, num_heads=4).eval()
    assert mhea.num_heads == 16 and mhea.head_dims == 8 and mhea.memory_size == 64
    assert mhea.expand.weight.shape == (128, 32)
    assert mhea.mk.weight.shape == (64, 8) and mhea.mk.bias is not None
    assert mhea.mv.weight.shape == (8, 64) and mhea.mv.bias is not None
    assert mhea.proj.weight.shape == (32, 128)
    x = torch.randn(2, 11, 32)
    out = mhea(x)
    assert out.shape == (2, 11, 32)
    torch.testing.assert_close(out, per_head_reference(mhea, x), rtol=1e-5, atol=1e-6)


def test_multi_head_options_and_errors():
    m = MultiHeadExternalAttention(24, num_heads=3, expansion=2, memory_size=10)
    assert m.num_heads == 6 and m.head_dims == 8 and m.memory_size == 10
    assert m(torch.randn(1, 5, 24)).shape == (1, 5, 24)
    assert MultiHeadExternalAttention(24, num_heads=3, expansion=2).memory_size == 128
    with pytest.raises(ValueError, match='num_heads=5 must divide embed_dims=24'):
        MultiHeadExternalAttention(24, num_heads=5)
    with pytest.raises(ValueError, match='attn_drop'):
        MultiHeadExternalAttention(24, num_heads=3, attn_drop=1.5)
    with pytest.raises(ValueError, match='expected'):
        m(torch.randn(1, 5, 16))


def test_registered_in_root_registry():
    from mmattn.registry import MODELS
    for name in ('ExternalAttention', 'ExternalAttentionBlock', 'MultiHeadExternalAttention'):
        assert MODELS.get(name) is not None
    blk = MODELS.build(dict(type='ExternalAttentionBlock', in_channels=8))
    assert isinstance(blk, ExternalAttentionBlock)


# ----------------------------------------------------------------------------- mmcv / mmdet


def test_build_plugin_layer_convention():
    from mmcv.cnn import build_plugin_layer
    name, layer = build_plugin_layer(
        dict(type='ExternalAttentionBlock', memory_size=16), postfix='_3', in_channels=32)
    assert name == 'ea_block_3'
    assert isinstance(layer, ExternalAttentionBlock) and layer.in_channels == 32
    assert layer.ea.memory_size == 16


def _resnet50(**kwargs):
    mmdet_backbones = pytest.importorskip('mmdet.models.backbones')
    return mmdet_backbones.ResNet(depth=50, out_indices=(3, ), **kwargs)


def test_mmdet_resnet50_plugin_runs_and_loads_stock_weights():
    torch.manual_seed(0)
    plugins = [
        dict(
            cfg=dict(type='ExternalAttentionBlock'),
            stages=(False, False, True, True),
            position='after_conv3')
    ]
    model = _resnet50(plugins=plugins)
    blk = model.layer3[0].ea_block
    assert isinstance(blk, ExternalAttentionBlock) and blk.in_channels == 1024
    assert isinstance(model.layer4[2].ea_block, ExternalAttentionBlock)
    assert not any('ea_block' in n for n, _ in model.layer1.named_modules())
    assert not any('ea_block' in n for n, _ in model.layer2.named_modules())

    model.eval()
    with torch.no_grad():
        (out, ) = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 2048, 2, 2) and torch.isfinite(out).all()

    stock = _resnet50()
    result = model.load_state_dict(stock.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys, 'the plugin parameters must be reported missing'
    assert all('.ea_block.' in k for k in result.missing_keys), result.missing_keys
    # (BatchNorm tolerates a missing num_batches_tracked, so it is never reported)
    plugin_keys = {
        k for k in model.state_dict()
        if '.ea_block.' in k and not k.endswith('num_batches_tracked')
    }
    assert set(result.missing_keys) == plugin_keys
    # 6 blocks in stage 3 and 3 in stage 4 carry one plugin each
    blocks = {k.split('.ea_block.')[0] for k in plugin_keys}
    assert len(blocks) == 9


def test_identity_plugin_keeps_a_pretrained_resnet_function():
    """act_cfg=None + zero_init=True: inserting EA into a trained ResNet changes nothing at
    first, also after the backbone's init_weights (which re-inits every BN to 1)."""
    torch.manual_seed(0)
    plugins = [
        dict(
            cfg=dict(type='ExternalAttentionBlock', act_cfg=None, zero_init=True),
            stages=(False, False, True, True),
            position='after_conv3')
    ]
    small = dict(base_channels=16)
    model = _resnet50(plugins=plugins, **small)
    model.init_weights()
    # the ResNet's own init (Kaiming convs, BN weight 1) ran over the plugins first; their
    # init_weights then restored M_v = M_k^T and the zero output norm
    blk = model.layer4[1].ea_block
    torch.testing.assert_close(blk.ea.mv.weight, blk.ea.mk.weight.permute(1, 0, 2))
    assert blk.bn.weight.abs().sum() == 0
    stock = _resnet50(**small)
    stock.init_weights()
    model.load_state_dict(stock.state_dict(), strict=False)
    model.eval()
    stock.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], stock(x)[0])
