"""A sixth paper's operator is one file: this test-only operator, registered here and nowhere
else, is picked up through the operator registry alone by the FLOP counter
(mmattn.analysis.count_flops uses its declared cost) and by the backbone benchmark's case list.
"""
import pytest
import torch
from mmengine.model import BaseModule
from torch import nn

from mmattn.analysis import OperatorCostError, count_flops
from mmattn.models.layers import base
from mmattn.registry import MODELS


class ScratchDWConv(base.AttnOperator):
    """A test-only 3x3 operator: depthwise 3x3, an element-wise gate (which no counter sees),
    pointwise 1x1."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1,
                 dilation=1, groups=1, bias=False, init_cfg=None):
        # BaseModule directly: the operator sets its own conv attributes, whatever the base
        # class normalises
        BaseModule.__init__(self, init_cfg=init_cfg)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.dw = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels,
                            bias=False)
        self.gate = nn.Parameter(torch.ones(1, in_channels, 1, 1))
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pw(self.dw(x) * self.gate)

    def flops(self, input_hw):
        h, w = input_hw
        n = -(-h // self.stride) * -(-w // self.stride)
        return (9 + 1 + self.out_channels) * self.in_channels * n


class Undeclared(ScratchDWConv):
    flops = base.AttnOperator.flops


@pytest.fixture
def scratch_ops():
    """Registers the scratch operators for one test and removes them after (the registry is
    process-wide: other tests iterate over every operator)."""
    names = ('ScratchDWConv', 'ScratchUndeclared')
    base.register_operator(ScratchDWConv)
    base.register_operator(Undeclared, name='ScratchUndeclared')
    yield names
    for name in names:
        MODELS._module_dict.pop(name, None)
        base._OPERATORS.pop(name, None)


def test_scratch_operator_cost_is_declared_not_traced(scratch_ops):
    assert 'ScratchDWConv' in base.list_operators()
    net = nn.Sequential(nn.Conv2d(3, 8, 1), MODELS.build(dict(type='ScratchDWConv',
                                                             in_channels=8, out_channels=16,
                                                             stride=2)))
    out = count_flops(net, (9, 7))
    stem, n = 3 * 8 * 9 * 7, 5 * 4
    declared = (9 + 1 + 16) * 8 * n
    assert out['macs'] == stem + declared
    seen = out['analytic']['ScratchDWConv']
    # the counter saw the two convs, not the element-wise gate the operator declares
    assert seen['seen'] == seen['conv_seen'] == (9 + 16) * 8 * n
    assert seen['total'] == declared and out['conv_macs'] == stem + seen['seen']
    # batch: the declared per-image cost scales with it
    assert count_flops(net, (9, 7), batch=3)['macs'] == 3 * (stem + declared)


def test_operator_without_declared_cost_is_named(scratch_ops):
    net = nn.Sequential(nn.Conv2d(3, 8, 1), MODELS.build(dict(type='ScratchUndeclared',
                                                             in_channels=8, out_channels=8)))
    with pytest.raises(OperatorCostError, match=r'Undeclared \(1\) .*declares no '
                       r'flops\(input_hw\)'):
        count_flops(net, (8, 8))


def test_benchmark_case_list_has_the_scratch_operator(scratch_ops):
    from mmattn.analysis import bench_cases
    assert 'op:ScratchDWConv' in bench_cases.all_cases()
    assert bench_cases.check_case('op:ScratchDWConv') is None
    assert bench_cases.label('op:ScratchDWConv') == 'ScratchDWConv in R50 (c4, c5)'
    step = bench_cases.make_step('op:ScratchDWConv', (64, 64, 1), 'cpu')
    step()  # one forward+backward of the backbone: the operator in every block of c4, c5
    model = step.model
    ops = [n for n, m in model.named_modules() if isinstance(m, ScratchDWConv)]
    assert ops == [f'layer3.{i}.conv2' for i in range(6)] + [f'layer4.{i}.conv2' for i in range(3)]
    assert all(p.grad is not None for n, p in model.named_parameters() if 'layer4.2.conv2' in n)
