"""Every operator under autocast with large activations: no NaN or inf, and how far from float32.

What `--amp` means here: mmengine's AmpOptimWrapper needs a GPU (it asserts CUDA/NPU/MLU/MUSA
and scales the loss with the CUDA GradScaler), so `tools/train.py --amp` on a CPU-only machine
stops with a clear error (tests/test_reliability/test_rel_tools.py). On a GPU it runs the
forward under `torch.autocast('cuda', float16)`. These tests run the operators under CPU
autocast: bfloat16 (what CPU autocast does by default) and float16 (the dtype of CUDA AMP).
CPU float16 autocast is stricter than CUDA's: CUDA autocasts softmax and sums to float32, the CPU
keeps them in float16, so a float16 failure here that involves softmax/sum is flagged as
CPU-only in its reason.

Sizes: 24 x 24 maps (576 positions) with 64 channels for the spatial operators, 256-channel
blocks for MRLA, 576 tokens for multi-head EA; batch 2; inputs ``randn * 100``. Train mode
runs forward and backward (output, input gradient and every parameter gradient must be
finite), eval mode the forward.

Known gaps are strict xfails naming the fix (docs/what_happens_when.md lists them); when a fix
lands the xfail turns into a failure that says to remove the marker.
"""
import pytest
import torch

import mmattn  # noqa: F401
import mmattn.models.layers.aa_conv  # noqa: F401
import mmattn.models.layers.lesa  # noqa: F401
from mmattn.models.layers.mrla import MRLABase, MRLALight
from mmattn.registry import MODELS

pytestmark = pytest.mark.slow
H, C = 24, 64


def _spatial(cfg):
    return lambda: MODELS.build(dict(cfg, in_channels=C, out_channels=C))


OPS = {
    'LESA': (_spatial(dict(type='LESA', max_size=H)), (2, C, H, H)),
    'SA': (_spatial(dict(type='LESA', fusion='none', max_size=H)), (2, C, H, H)),
    'LESA-classification': (_spatial(dict(type='LESA', pe_type='classification', max_size=14)),
                            (2, C, 14, 14)),
    'AA': (lambda: MODELS.build(dict(type='AAConv2d', in_channels=C, out_channels=256,
                                     max_size=H)), (2, C, H, H)),
    'LALayer': (_spatial(dict(type='LALayer')), (2, C, H, H)),
    'MRLA-light': (lambda: MRLALight(256), (2, 256, H, H)),
    'MRLA-base': (lambda: MRLABase(256), (2, 256, H, H)),
    'EA': (lambda: MODELS.build(dict(type='ExternalAttention', channels=C)), (2, C, H, H)),
    'EA-block': (lambda: MODELS.build(dict(type='ExternalAttentionBlock', in_channels=C)),
                 (2, C, H, H)),
    'multi-head-EA': (lambda: MODELS.build(dict(type='MultiHeadExternalAttention',
                                                embed_dims=C, num_heads=4)), (2, H * H, C)),
}


def forward(name, m, x):
    if name == 'MRLA-light':
        return m(x, x)  # identity: the block input
    if name == 'MRLA-base':  # the second block of a stage attends over both
        y, k, v = m(x)
        y2, _, _ = m(x, (k, ), (v, ))
        return y + y2
    return m(x)


def make(name):
    torch.manual_seed(0)
    build, shape = OPS[name]
    return build(), torch.randn(shape)


def finite(t):
    return bool(torch.isfinite(t).all())


def check_large_activations(name, dtype):
    m, x = make(name)
    x = x * 100
    m.train()
    xg = x.clone().requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        y = forward(name, m, xg)
    y.float().square().mean().backward()
    bad = [n for n, p in m.named_parameters() if p.grad is not None and not finite(p.grad)]
    assert finite(y) and finite(xg.grad) and not bad, (name, dtype, bad[:5])
    m.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=dtype):
        assert finite(forward(name, m, x)), (name, dtype, 'eval')


@pytest.mark.parametrize('name', list(OPS))
def test_bfloat16_large_activations_finite(name):
    check_large_activations(name, torch.bfloat16)


@pytest.mark.parametrize('name', list(OPS))
def test_float16_large_activations_finite(name):
    check_large_activations(name, torch.float16)


@pytest.mark.parametrize('name', list(OPS))
def test_bfloat16_close_to_float32(name):
    """Unit-scale inputs, eval: the autocast output within 2% (relative L2) of float32 (bfloat16
    keeps 8 significant bits, ~0.4% per rounding)."""
    m, x = make(name)
    m.eval()
    with torch.no_grad():
        ref = forward(name, m, x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y = forward(name, m, x)
    err = ((y.float() - ref).norm() / ref.norm()).item()
    assert err < 2e-2, (name, err)


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
        assert finite(ref)
        with torch.autocast('cpu', dtype=torch.float16):
            y = m(x)
    # finite only: at logits ~1e5 the float16 rounding of q and k alone moves the softmax
    assert finite(y), name
