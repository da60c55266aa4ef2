"""Every operator under low precision against a float64 reference: outputs and gradients.

For each operator (every registered spatial operator with its variants, plus MRLA and External
Attention, which are not 3x3-conv replacements) a float64 copy gives the reference output, input
gradient and parameter gradients; the same module then runs in

- ``fp32``: float32, no autocast;
- ``bf16``: CPU autocast to bfloat16 (what CPU autocast does by default);
- ``fp16``: CPU autocast to float16 with loss scaling: the loss is multiplied by 2^16, or by
  the largest power of two at which the float64 gradients stay below 2^15 (what
  ``GradScaler``, which halves its scale at every overflow, settles on), and the gradients are
  unscaled. Every gradient must then be finite.

at input scales x1 and x100 (activations of that size occur in training; at x100 unnormalised
attention logits reach ~1e4, where a half-precision rounding of q or k moves them by tens).
Errors are relative L2 (``|t - ref| / |ref|``) of the output, the input gradient and every
parameter gradient; each must stay below its precision's bound in ``BOUNDS``. The loss is
``mean(y * w)`` with a fixed random ``w``, so the output gradient is the same in every run.

What ``--amp`` means here: mmengine's AmpOptimWrapper needs a GPU (it asserts CUDA/NPU/MLU/MUSA
and scales the loss with the CUDA GradScaler), so ``tools/train.py --amp`` on a CPU-only
machine stops with a clear error (tests/test_reliability/test_rel_tools.py). CPU float16
autocast is stricter than CUDA's: CUDA autocasts softmax and sums to float32, the CPU keeps
them in float16.

Sizes: 24 x 24 maps with 64 channels for the spatial operators (LESA's classification
encoding 14 x 14: its tables grow with (HW)^2), 256-channel blocks for MRLA, 576 tokens for
multi-head EA; batch 2, train mode.
"""
import copy
import math

import pytest
import torch

import mmattn  # noqa: F401
from mmattn.models.layers import base
from mmattn.models.layers.mrla import MRLABase, MRLALight
from mmattn.registry import MODELS

pytestmark = pytest.mark.slow
H, C = 24, 64
SCALES = (1, 100)
FP16_MAX_SCALE = 2.0**16

# Largest relative L2 error allowed against float64, per precision: (output and input
# gradient, every parameter gradient), the same for every case and both input scales.
# Measured worst cases (issue 16 report): fp32 2.4e-3 / 2.5e-3 (LALayer x100); bf16 3.7e-2 /
# 1.0e-1 and fp16 1.3e-2 / 3.8e-2 (LESA-classification x1: the bias of the gate's first
# BatchNorm, whose gradient is a small sum after two train-mode BatchNorms); AA, LA-layer,
# MRLA and EA stay within 6e-3 (bf16) and 3e-3 (fp16) at both scales. Before the fixes of
# issue 16, AA and LA-layer were at 1.2-1.5 (bf16, x100) and not finite (fp16, x100), EA at
# 0.4 (bf16, x100).
BOUNDS = {'fp32': (5e-3, 5e-3), 'bf16': (5e-2, 1.5e-1), 'fp16': (2e-2, 5e-2)}

# Variants of registered operators (registry name -> {case name: extra kwargs}); an operator
# without an entry runs with its defaults, so a newly registered one is covered.
VARIANTS = {
    'LESA': {
        'LESA': dict(max_size=H),
        'LESA-static': dict(max_size=H, fusion='static'),
        'SA': dict(max_size=H, fusion='none'),
        'LESA-explicit': dict(max_size=H, attn_impl='explicit'),
        'LESA-classification': dict(max_size=14, pe_type='classification', _size=14),
    },
    'AAConv2d': {
        'AA': dict(out_channels=256, max_size=H),
        'AA-explicit': dict(out_channels=256, max_size=H, attn_impl='explicit'),
        'AA-stride2': dict(out_channels=256, max_size=H // 2, stride=2),
    },
    'LALayer': {
        'LALayer': dict(),
        'LALayer-key-anchor': dict(offset_anchor='key'),
        'LALayer-add-outside': dict(offset_mode='add', value_mode='outside'),
    },
}

def spatial_operators():
    """Every registered 3x3-conv replacement (the operator contract's list)."""
    return base.list_operators()


def _spatial_cases():
    cases = {}
    for name, cls in spatial_operators().items():
        for case, kw in VARIANTS.get(name, {name: {}}).items():
            kw = dict(kw)
            size = kw.pop('_size', H)
            cfg = dict(in_channels=C, out_channels=C)
            cfg.update(kw)
            cases[case] = (lambda cls=cls, cfg=cfg: cls(**cfg), (2, C, size, size), None)
    return cases


def _mrla_base_forward(m, x):
    # the second block of a stage attends over both blocks' keys
    y, k, v = m(x)
    y2, _, _ = m(x, (k, ), (v, ))
    return y + y2


# Modules outside the operator registry (not 3x3-conv replacements): (builder, input shape,
# forward or None for m(x)).
OTHERS = {
    'MRLA-light': (lambda: MRLALight(256), (2, 256, H, H), lambda m, x: m(x, x)),
    'MRLA-base': (lambda: MRLABase(256), (2, 256, H, H), _mrla_base_forward),
    'EA': (lambda: MODELS.build(dict(type='ExternalAttention', channels=C)), (2, C, H, H), None),
    'EA-block': (lambda: MODELS.build(dict(type='ExternalAttentionBlock', in_channels=C)),
                 (2, C, H, H), None),
    'multi-head-EA': (lambda: MODELS.build(dict(type='MultiHeadExternalAttention',
                                                embed_dims=C, num_heads=4)), (2, H * H, C), None),
}
CASES = dict(_spatial_cases(), **OTHERS)


def run(m, x, w, forward, dtype, loss_scale=1.0):
    """Output, input gradient and parameter gradients (unscaled, float64) of ``mean(y * w)``."""
    x = x.clone().requires_grad_()
    with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        y = forward(m, x) if forward else m(x)
    ((y.to(w.dtype) * w).mean() * loss_scale).backward()
    grads = {'input': x.grad}
    grads.update((n, p.grad) for n, p in m.named_parameters() if p.grad is not None)
    return y.double(), {n: g.double() / loss_scale for n, g in grads.items()}


@pytest.fixture(scope='module')
def reference():
    """(case, scale) -> (initial module, input, w, float64 output, float64 gradients)."""
    cache = {}

    def get(case, scale):
        if (case, scale) not in cache:
            build, shape, forward = CASES[case]
            torch.manual_seed(0)
            m = build().train()
            x = torch.randn(shape) * scale
            y = forward(m, x) if forward else m(x)
            w = torch.randn(y.shape, dtype=torch.float64)
            ref = run(copy.deepcopy(m).double(), x.double(), w, forward, None)
            cache[case, scale] = (m, x, w, ref)
        return cache[case, scale]

    return get


def rel_errors(out, grads, ref_out, ref_grads):
    errs = {'output': ((out - ref_out).norm() / ref_out.norm()).item()}
    # a parameter whose true gradient is ~0 (e.g. a bias before a softmax that cancels it) is
    # measured against 1% of the largest parameter gradient's norm instead
    floor = 1e-2 * max(g.norm().item() for n, g in ref_grads.items() if n != 'input')
    for n, g in ref_grads.items():
        denom = g.norm().item() if n == 'input' else max(g.norm().item(), floor)
        errs[n] = ((grads[n] - g).norm() / denom).item()
    return errs


def fp16_loss_scale(ref_grads):
    top = max(g.abs().max().item() for g in ref_grads.values())
    return min(FP16_MAX_SCALE, 2.0**math.floor(math.log2(2.0**15 / top)))


@pytest.mark.parametrize('precision', list(BOUNDS))
@pytest.mark.parametrize('scale', SCALES)
@pytest.mark.parametrize('case', list(CASES))
def test_close_to_float64(case, scale, precision, reference):
    m0, x, w, (ref_out, ref_grads) = reference(case, scale)
    forward = CASES[case][2]
    m = copy.deepcopy(m0)
    if precision == 'fp32':
        out, grads = run(m, x, w, forward, None)
    elif precision == 'bf16':
        out, grads = run(m, x, w, forward, torch.bfloat16)
    else:
        out, grads = run(m, x, w, forward, torch.float16, fp16_loss_scale(ref_grads))
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert torch.isfinite(out).all() and not bad, (case, scale, precision, 'not finite', bad)
    errs = rel_errors(out, grads, ref_out, ref_grads)
    io_bound, param_bound = BOUNDS[precision]
    for name, err in errs.items():
        bound = io_bound if name in ('output', 'input') else param_bound
        assert err < bound, (case, scale, precision, name, err, bound)


def test_operator_names_resolve():
    """The fallback and VARIANTS names are registry names of existing classes (a renamed
    operator would otherwise drop out of the cases silently)."""
    ops = spatial_operators()
    assert all(cls is not None for cls in ops.values()), [n for n, c in ops.items() if not c]
    assert set(VARIANTS) <= set(ops), set(VARIANTS) - set(ops)


@pytest.mark.parametrize('name,cfg', [
    ('LESA fused', dict(type='LESA', in_channels=C, out_channels=C, max_size=14)),
    ('AA fused', dict(type='AAConv2d', in_channels=C, out_channels=256, max_size=14)),
    ('LESA explicit', dict(type='LESA', in_channels=C, out_channels=C, max_size=14,
                           attn_impl='explicit')),
    ('LESA classification', dict(type='LESA', in_channels=C, out_channels=C, max_size=14,
                                 pe_type='classification')),
    ('AA explicit', dict(type='AAConv2d', in_channels=C, out_channels=256, max_size=14,
                         attn_impl='explicit')),
])
def test_float16_logits_beyond_half_range(name, cfg):
    """Logits far beyond float16's 65504 (q/k projection x30, input x10; float32 is finite):
    the attention must not turn them into inf/NaN under float16 autocast."""
    torch.manual_seed(0)
    m = MODELS.build(cfg).eval()
    w = m.qkv_transform.weight if hasattr(m, 'qkv_transform') else m.qkv_conv.weight
    with torch.no_grad():
        w.mul_(30)
        x = torch.randn(1, C, 14, 14) * 10
        ref = m(x)
        assert torch.isfinite(ref).all()
        with torch.autocast('cpu', dtype=torch.float16):
            y = m(x)
    # finite only: at logits ~1e5 the float16 rounding of q and k alone moves the softmax
    assert torch.isfinite(y).all(), name
