"""The modules the deployment tests trace: every registered 3x3-conv replacement
(``list_operators()``, with LESA's two encodings and its SA baseline) plus MRLA's and External
Attention's block-level modules; small channels and maps keep traces and exports cheap."""
import torch

from mmattn.models.layers import list_operators
from mmattn.registry import MODELS

C = 16
HW = (6, 7)  # not square, so a transposed relative table would show
# extra settings of an operator worth tracing on its own: other code paths
VARIANTS = {
    'LESA': [dict(pe_type='classification'), dict(fusion='none')],
}


def _op(name, **kw):
    return dict(type=name, in_channels=C, out_channels=C, num_heads=2, **kw)


def operator_cases():
    """``{id: config}``: each registered operator with its defaults, then its variants."""
    cases = {}
    for name in sorted(list_operators()):
        cases[name] = _op(name)
        for kw in VARIANTS.get(name, []):
            cases[name + '-' + '-'.join(f'{k}={v}' for k, v in kw.items())] = _op(name, **kw)
    return cases


class _MRLABaseStep(torch.nn.Module):
    """MRLA-base with one previous layer's key and value, as a stage's second block calls it."""

    def __init__(self):
        super().__init__()
        self.mrla = MODELS.build(dict(type='MRLABase', channels=C, head_channels=8))

    def forward(self, x):
        _, k, v = self.mrla(x)
        return self.mrla(x, [k], [v])[0]


class _First(torch.nn.Module):
    # modules returning tuples: the traced output is the first; MRLA-light takes the block's
    # identity as a second input (here the input itself)
    def __init__(self, cfg):
        super().__init__()
        self.m = MODELS.build(cfg)
        self.with_identity = cfg['type'] == 'MRLALight'

    def forward(self, x):
        out = self.m(x, x) if self.with_identity else self.m(x)
        return out[0] if isinstance(out, tuple) else out


def module_cases():
    return {
        'MRLALight': dict(type='MRLALight', channels=C, head_channels=8),
        'MRLABase': 'mrla_base_step',
        'ExternalAttention': dict(type='ExternalAttention', channels=C, memory_size=8),
        'ExternalAttentionBlock': dict(type='ExternalAttentionBlock', in_channels=C,
                                       memory_size=8),
    }


def build_case(cfg):
    torch.manual_seed(0)
    if cfg == 'mrla_base_step':
        m = _MRLABaseStep()
    else:
        m = _First(cfg)
    return m.eval()


def all_cases():
    return {**operator_cases(), **module_cases()}


def example_input(batch=2):
    return torch.randn(batch, C, *HW, generator=torch.Generator().manual_seed(1))
