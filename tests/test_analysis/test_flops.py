"""mmattn.analysis.count_flops: what the counter sees, what it adds, the conventions.

(The declared-cost path of a registered operator: test_scratch_operator.py.)
"""
import pytest
from torch import nn
import torch.nn.functional as F

from mmattn.analysis import count_flops, in_convention
from mmattn.models.layers import base, mrla
from mmattn.registry import MODELS


def test_sdpa_and_module_tallies():
    class Attn(nn.Module):  # SDPA on the CPU: not in torch's flop table, counted by ours

        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 3, 1, bias=False)

        def forward(self, x):
            q = self.proj(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (1, 1, HW, C)
            return F.scaled_dot_product_attention(q, q, q)

    out = count_flops(Attn(), (6, 5), modules=['proj'])
    L, C = 30, 3
    assert out['attn_macs'] == L * L * (C + C)
    assert out['macs'] == out['attn_macs'] + out['conv_macs'] == L * L * 2 * C + L * C * C
    assert out['module_macs'] == {'proj': L * C * C}


@pytest.mark.skipif(not issubclass(mrla.MRLABase, getattr(base, 'AttnModule', base.AttnOperator)),
                    reason='MRLABase joins the operator contract on the ops branch')
def test_mrla_base_weighted_value_sum():
    """MRLA-base's weighted value sum (addcmul, element-wise): t MACs per value element,
    declared with the call's history (CALL_ARGUMENTS)."""
    MRLABase = mrla.MRLABase

    class Stage(nn.Module):

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 32, 1)
            self.blocks = nn.ModuleList(MRLABase(32) for _ in range(3))

        def forward(self, x):
            x = self.stem(x)
            keys, values = [], []
            for blk in self.blocks:
                out, k, v = blk(x, keys, values)
                keys.append(k)
                values.append(v)
            return out

    out = count_flops(Stage(), (8, 8))
    entry = out['analytic']['MRLABase']
    assert entry['total'] - entry['seen'] == (1 + 2 + 3) * 32 * 8 * 8


def test_conventions():
    f = dict(macs=100, norm_elements=10, pool_elements=3)
    assert in_convention(f, 'macs') == 100 and in_convention(f, '2macs') == 200
    assert in_convention(f, 'thop') == 123


@pytest.mark.skipif(not issubclass(MODELS.get('LALayer'), base.AttnOperator),
                    reason='LALayer joins the operator contract on the ops branch')
def test_la_layer_declared_cost_replaces_its_convs():
    la = MODELS.build(dict(type='LALayer', in_channels=16, out_channels=16))
    net = nn.Sequential(nn.Conv2d(3, 16, 1), la)
    out = count_flops(net, (12, 10))
    assert out['macs'] == 3 * 16 * 12 * 10 + la.flops((12, 10))
    entry = out['analytic']['LALayer']
    assert entry['total'] > entry['seen'] == entry['conv_seen'] > 0
