"""``flops(input_hw)`` of every operator variant against an independent count: torch's
dispatcher-level ``FlopCounterMode`` (it sees convolutions and every matmul, einsum included,
inside custom autograd Functions too) on the explicit attention path, at batch 2 divided by
two. Where an operator's products are element-wise (LA-layer, MRLA-base's weighted sum), the
counter sees the convs only and the rest is counted by hand here."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mmattn.models.layers.attention import default_attn_impl
from mmattn.registry import MODELS

HW = (9, 6)


def counted_macs(module, *inputs):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), default_attn_impl('explicit'), counter:
        module(*inputs)
    return counter.get_total_flops() // 2


LESA = dict(type='LESA', in_channels=32, out_channels=64, max_size=16)
AA = dict(type='AAConv2d', in_channels=32, out_channels=64, max_size=16)
MATMUL_OPERATORS = {
    'LESA': LESA,
    'LESA stride 2': dict(LESA, stride=2),
    'LESA dilation 2': dict(LESA, dilation=2, padding=2),
    'static LESA': dict(LESA, fusion='static'),
    'SA (no unary)': dict(LESA, fusion='none'),
    'LESA classification': dict(LESA, pe_type='classification', max_size=9),
    'AA relative': AA,
    'AA stride 2': dict(AA, stride=2),
    'AA attn_downsample': dict(AA, attn_downsample=True),
    'AA no position': dict(AA, pos_enc='none'),
    'AA sine': dict(AA, pos_enc='sine'),
    'AA coordconv': dict(AA, pos_enc='coordconv'),
    'AA attention only': dict(AA, upsilon=1.0),
    'AA grouped conv branch': dict(AA, groups=4, dv=16),
}


@pytest.mark.parametrize('name', list(MATMUL_OPERATORS))
def test_flops_equal_the_dispatcher_count(name):
    op = MODELS.build(MATMUL_OPERATORS[name]).eval()
    assert op.flops(HW) * 2 == counted_macs(op, torch.randn(2, 32, *HW))


def test_lesa_dcn_unary_counts_the_deformable_conv_as_a_conv():
    pytest.importorskip('mmcv.ops')
    op = MODELS.build(dict(LESA, unary='dcn')).eval()
    plain = MODELS.build(LESA)
    h, w = HW
    # the offset conv (3x3, 18 outputs) comes on top of the grouped 3x3 it deforms
    assert op.flops(HW) == plain.flops(HW) + 32 * 18 * 9 * h * w


@pytest.mark.parametrize('kw', [dict(), dict(stride=2), dict(groups=4),
                                dict(offset_mode='add', value_mode='outside')])
def test_la_layer_conv_part_is_what_the_counter_sees(kw):
    op = MODELS.build(dict(type='LALayer', in_channels=32, out_channels=64, **kw)).eval()
    parts = op.flops_breakdown(*HW)
    seen = counted_macs(op, torch.randn(2, 32, *HW)) // 2
    convs = parts['qkv'] + parts['offset_net']
    if op.offset_mode == 'sample':
        assert seen == convs
    else:  # 'add' computes its position bias with einsums, which the counter sees too
        assert convs < seen <= parts['total']
    assert op.flops(HW) == parts['total'] == op.flops(*HW)
    # by hand: q.k~ and the weighted sum, k*k*C_out each per attended pixel
    assert parts['attention'] >= 2 * 9 * 64 * parts_positions(op, HW)


def parts_positions(op, hw):
    h, w = hw
    if op.stride > 1 and op.stride_mode == 'pool_first':
        return -(-h // op.stride) * -(-w // op.stride)
    return h * w


def test_mrla_light_flops_equal_the_dispatcher_count():
    m = MODELS.build(dict(type='MRLALight', channels=64)).eval()
    x = torch.randn(2, 64, *HW)
    assert m.flops(HW) * 2 == counted_macs(m, x, x)


@pytest.mark.parametrize('history', [0, 2])
def test_mrla_base_flops_are_the_count_plus_the_weighted_sum(history):
    m = MODELS.build(dict(type='MRLABase', channels=64)).eval()
    x = torch.randn(2, 64, *HW)
    keys = tuple(torch.randn(2, m.num_heads, 16) for _ in range(history))
    values = tuple(torch.randn(2, 64, *HW) for _ in range(history))
    # addcmul is element-wise: t = history + 1 multiply-adds per value element, by hand
    weighted_sum = (history + 1) * 64 * HW[0] * HW[1]
    assert m.flops(HW, history) == counted_macs(m, x, keys, values) // 2 + weighted_sum


@pytest.mark.parametrize('cfg,shape', [
    (dict(type='ExternalAttention', channels=64), (2, 64, *HW)),
    (dict(type='ExternalAttentionBlock', in_channels=64), (2, 64, *HW)),
    (dict(type='MultiHeadExternalAttention', embed_dims=64, num_heads=4), (2, HW[0] * HW[1], 64)),
])
def test_external_attention_flops_equal_the_dispatcher_count(cfg, shape):
    m = MODELS.build(cfg).eval()
    assert m.flops(HW) * 2 == counted_macs(m, torch.randn(*shape))
