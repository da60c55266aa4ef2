"""The operator contract (mmattn/models/layers/base.py, docs/dev/operator_contract.md), checked
for every registered 3x3-conv replacement: ``list_operators()``, so a new operator is checked
by registering it, with no edit here (the scratch operator below shows it).

Each operator is built from the conv signature alone (its defaults must serve any input), and
must give the 3x3 conv's output size for any H, W (odd, 1x1), stride 1 and 2, batch 1 and 0,
the same numbers for channels-last input, run on the meta device and under CPU autocast, and
answer a wrong input with an error naming itself and the expected shape.
"""
import pytest
import torch
from torch import nn

from mmattn.models.layers import (AttnOperator, base, is_operator, list_operators,
                                  register_operator)
from mmattn.models.layers.attention import default_attn_impl
from mmattn.models.layers.base import to_hw
from mmattn.registry import MODELS

C_IN, C_OUT = 32, 32


SCRATCH = 'ScratchDepthwiseOp'


@register_operator(name=SCRATCH, force=True)
class ScratchDepthwiseOp(AttnOperator):
    """Test-only operator: a depthwise 3x3 conv and a 1x1, registered in this file only."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1,
                 dilation=1, groups=1, bias=False, *, init_cfg=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init_cfg=init_cfg)
        self.dw = nn.Conv2d(in_channels, in_channels, 3, self.stride, padding=self.dilation,
                            dilation=self.dilation, groups=in_channels, bias=False)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pw(self.dw(x))

    def flops(self, input_hw):
        h, w = self.out_hw(input_hw)
        return (9 * self.in_channels + self.in_channels * self.out_channels) * h * w


OPERATORS = sorted(list_operators())


def _unregister_scratch():
    MODELS._module_dict.pop(SCRATCH, None)
    base._OPERATORS.pop(SCRATCH, None)


# Other test modules list the operators at collection too (the registry is process-wide): the
# scratch operator is in the list above, and registered only while this module's tests run.
_unregister_scratch()


@pytest.fixture(autouse=True, scope='module')
def scratch_registered():
    register_operator(ScratchDepthwiseOp, name=SCRATCH, force=True)
    yield
    _unregister_scratch()


def build(name, stride=1, device=None):
    with torch.device(device or 'cpu'):
        return MODELS.build(dict(type=name, in_channels=C_IN, out_channels=C_OUT,
                                 stride=stride))


def conv_out_hw(h, w, stride):
    return -(-h // stride), -(-w // stride)


def test_the_list_holds_the_papers_operators_and_the_scratch_one():
    assert {'LESA', 'AAConv2d', 'LALayer', 'ScratchDepthwiseOp'} <= set(OPERATORS)
    assert all(issubclass(list_operators()[n], AttnOperator) for n in OPERATORS)
    # the block-level modules are operators (their tensors are) but not 3x3 replacements
    every = list_operators(conv_replacements_only=False)
    assert {'MRLALight', 'MRLABase', 'ExternalAttention'} <= set(every) - set(OPERATORS)


@pytest.mark.parametrize('name', OPERATORS)
@pytest.mark.parametrize('stride', [1, 2])
def test_any_size_and_batch(name, stride):
    op = build(name, stride)
    assert is_operator(op) and op.stride == stride
    # training needs two values per channel for a BatchNorm: batch 2 at 1x1, eval for batch 1
    for train, n, (h, w) in [(True, 2, (1, 1)), (False, 1, (1, 1)), (True, 2, (5, 7)),
                             (True, 1, (8, 6)), (True, 0, (5, 4)), (False, 0, (3, 3))]:
        out = op.train(train)(torch.randn(n, C_IN, h, w))
        assert out.shape == (n, C_OUT, *conv_out_hw(h, w, stride)), (n, h, w)
        assert torch.isfinite(out).all()
        if n:
            out.mean().backward()
    # an empty batch leaves the norms' running statistics finite
    assert all(torch.isfinite(b).all() for b in op.buffers() if b.is_floating_point())


@pytest.mark.parametrize('name', OPERATORS)
def test_channels_last_gives_the_same_output(name):
    torch.manual_seed(0)
    op = build(name, 2).eval()
    x = torch.randn(2, C_IN, 7, 9)
    with torch.no_grad():
        ref = op(x)
        out = op(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', OPERATORS)
def test_meta_device(name):
    op = build(name, 2, device='meta')
    assert all(p.is_meta for p in op.parameters())
    out = op(torch.empty(2, C_IN, 9, 6, device='meta'))
    assert out.is_meta and out.shape == (2, C_OUT, 5, 3)


@pytest.mark.parametrize('name', OPERATORS)
def test_cpu_autocast_bfloat16(name):
    op = build(name).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = op(torch.randn(2, C_IN, 6, 5))
    assert out.shape == (2, C_OUT, 6, 5) and torch.isfinite(out.float()).all()


@pytest.mark.parametrize('name', OPERATORS)
@pytest.mark.parametrize('shape', [(1, C_IN + 1, 6, 6), (C_IN, 6, 6), (1, C_IN, 6)])
def test_wrong_input_names_the_operator_and_the_expected_shape(name, shape):
    op = build(name)
    with pytest.raises(ValueError, match=rf'{name}: expected input \(N, {C_IN}, H, W\), got '
                       + re_tuple(shape)):
        op(torch.randn(*shape))


def re_tuple(shape):
    return r'\(' + ', '.join(map(str, shape)) + r'\)'


@pytest.mark.parametrize('name', OPERATORS)
def test_flops_declared_and_at_least_what_a_counter_sees(name):
    """``flops`` is declared, counts one image, and includes every matmul/conv a dispatcher
    counter sees on the explicit path (an operator may add element-wise products the counter
    does not see, as the LA-layer does)."""
    from torch.utils.flop_counter import FlopCounterMode
    op = build(name, 2).eval()
    hw = (7, 10)
    declared = op.flops(hw)
    assert isinstance(declared, int) and declared > 0
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), default_attn_impl('explicit'), counter:
        op(torch.randn(3, C_IN, *hw))
    seen = counter.get_total_flops() // 2 // 3
    assert declared >= seen
    assert op.flops(to_hw(hw)) == declared


def test_registering_a_non_operator_is_refused():
    with pytest.raises(TypeError, match='not a subclass of AttnOperator'):
        register_operator(nn.Conv2d)
