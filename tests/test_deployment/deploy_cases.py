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


# onnxruntime's float32 output may differ from eager float64 by this many times eager
# float32's own difference from float64 (the model's noise floor). Measured on the cases
# here: at most 1.6x (TorchScript exporter, 6x7 maps).
GAP_FACTOR = 4


def float64_reference(m, x):
    """``(eager float32 output, eager float64 output)``; ``m`` is left in float32."""
    with torch.no_grad():
        ref = m(x)
        ref64 = m.double()(x.double())
    m.float()
    return ref, ref64


def run_onnx(data, x):
    import onnxruntime as ort
    s = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
    return torch.from_numpy(s.run(None, {s.get_inputs()[0].name: x.numpy()})[0])


def assert_within_gap(out, ref, ref64):
    gap = (ref.double() - ref64).abs().max().item()
    err = (out.double() - ref64).abs().max().item()
    assert out.shape == ref.shape
    assert err <= GAP_FACTOR * gap + 1e-7, f'onnxruntime {err:.3g} vs noise floor {gap:.3g}'
