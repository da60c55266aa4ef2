"""Issue 15's promise, checked end to end: a new paper's 3x3-conv operator is ONE file. The
operator below is written to a module outside the repository and imported (which registers it);
nothing in mmattn or its tests names it. Then, in that process, the operator conformance test,
the FLOP counter, the benchmark's case list and the pretrained-load check all pick it up."""
import json
import os.path as osp
import textwrap

import pytest

from conftest import REPO, run_py

OPERATOR_FILE = '''
import torch
from torch import nn

from mmattn.models.layers.base import AttnOperator, register_operator


@register_operator
class OneFileOp(AttnOperator):
    """A 3x3 conv in 4 groups scaled by a learned per-channel gate: a stand-in for a sixth
    paper's operator (its gate is maths no FLOP counter sees, hence the declared cost)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1,
                 dilation=1, groups=1, bias=False, *, init_cfg=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, init_cfg=init_cfg)
        self.grouped = nn.Conv2d(in_channels, out_channels, 3, self.stride, self.dilation,
                                 self.dilation, groups=4, bias=bias)
        self.gate = nn.Parameter(torch.ones(1, out_channels, 1, 1))

    def forward(self, x):
        return self.grouped(x) * self.gate

    def flops(self, input_hw):
        h, w = self.out_hw(input_hw)
        return (9 * self.in_channels // 4 + 1) * self.out_channels * h * w
'''

CHECKS = '''
import json, sys
import pytest
import torch
import one_file_op  # registers OneFileOp: the only place it is named
from mmattn.analysis import bench_cases, count_flops
from mmattn.models.layers import list_operators
from mmattn.registry import MODELS
from mmattn.utils.checkpoint import attention_state_keys

res = {'listed': 'OneFileOp' in list_operators()}
res['conformance_exit'] = int(pytest.main(
    ['-q', '-p', 'no:cacheprovider', '-k', 'OneFileOp', sys.argv[1]]))
net = MODELS.build(dict(type='AttnResNet', depth=18, stage_ops=(None, None, None,
                                                                 dict(type='OneFileOp'))))
sizes = []  # the input size each OneFileOp sees, from a real forward
ops = [m for m in net.modules() if type(m).__name__ == 'OneFileOp']
hooks = [m.register_forward_pre_hook(lambda m, a: sizes.append((m, a[0].shape[-2:])))
         for m in ops]
net.eval()(torch.zeros(1, 3, 64, 64))
for h in hooks:
    h.remove()
flops = count_flops(net, (64, 64))
res['num_ops'] = len(ops)
res['declared_total'] = flops['analytic']['OneFileOp']['total']
res['declared_expected'] = sum(m.flops(tuple(hw)) for m, hw in sizes)
res['bench_case'] = 'op:OneFileOp' in bench_cases.all_cases()
keys = attention_state_keys(net)
res['checkpoint_keys'] = sorted(keys)
print('RESULT ' + json.dumps(res))
'''


@pytest.mark.slow
def test_an_operator_in_one_file_is_picked_up_everywhere(tmp_path):
    (tmp_path / 'one_file_op.py').write_text(textwrap.dedent(OPERATOR_FILE))
    conformance = osp.join(REPO, 'tests', 'test_models', 'test_layers',
                           'test_operator_contract.py')
    proc = run_py(['-c', CHECKS, conformance], env={'PYTHONPATH': str(tmp_path)},
                  cwd=str(tmp_path))
    res = json.loads(proc.stdout.split('RESULT ', 1)[1].splitlines()[0])
    assert res['listed']
    # the conformance module parametrises over list_operators(): OneFileOp's cases ran and
    # passed (pytest exits 5 when -k selects nothing)
    assert res['conformance_exit'] == 0, proc.stdout[-3000:]
    assert res['num_ops'] == 2  # layer4's two blocks
    assert res['declared_total'] == res['declared_expected'] > 0
    assert res['bench_case']
    assert res['checkpoint_keys'] and all(
        k.startswith('layer4.') and ('.conv2.grouped.' in k or k.endswith('.conv2.gate'))
        for k in res['checkpoint_keys'])
