"""Bad input gets an error that names the field, the value and what is accepted.

Every case builds or runs the real module (no mocks) and checks the three parts of the message;
none may surface as a bare assertion or an error from inside torch. The cases are listed in
docs/what_happens_when.md.
"""
import re

import pytest
import torch

import mmattn  # noqa: F401
import mmattn.models.layers.aa_conv  # noqa: F401  (registers AAConv2d)
import mmattn.models.layers.lesa  # noqa: F401  (registers LESA)
from mmattn.registry import MODELS

LESA = dict(type='LESA', num_heads=8, pe_type='detection_qr')
AA = dict(type='AAConv2d', num_heads=8)


def build(**kw):
    cfg = dict(type='AttnResNet', depth=50)
    cfg.update(kw)
    return MODELS.build(cfg)


def raises(exc, *parts):
    """pytest.raises matching every part of the message literally, in order."""
    return pytest.raises(exc, match='(?s)' + '.*'.join(re.escape(p) for p in parts))


# --------------------------------------------------------------------------------- backbones
BACKBONE_CASES = {
    'unknown operator type': (
        dict(stage_ops=(None, None, dict(type='LESAA'), None)), ValueError,
        ["stage_ops[2].type='LESAA'", 'not a registered operator', 'LESA']),
    'operator not a dict': (
        dict(stage_ops=(None, None, 'LESA', None)), ValueError,
        ["stage_ops[2]='LESA'", "must be a dict with a 'type' key"]),
    'stage_ops length': (
        dict(stage_ops=(None, LESA, LESA)), ValueError,
        ['stage_ops=', 'one entry per stage', 'num_stages=4']),
    'op_blocks length': (
        dict(stage_ops=(None, None, LESA, None), op_blocks=('all', 'all')), ValueError,
        ["op_blocks=('all', 'all')", 'one entry per stage', 'num_stages=4']),
    'op_blocks unknown choice': (
        dict(stage_ops=(None, None, LESA, None), op_blocks=('all', 'all', 'every', 'all')),
        ValueError, ["op_blocks[2]='every'", "'all', 'all_but_first', 'first', 'none'"]),
    'op_blocks index out of range': (
        dict(stage_ops=(None, None, LESA, None), op_blocks=('all', 'all', [0, 6], 'all')),
        ValueError, ['op_blocks[2]=[0, 6]', 'ints in [0, 5]', 'stage 3 has 6 blocks']),
    'stage_with_dcn length': (
        dict(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
             stage_with_dcn=(False, True, True)), ValueError,
        ['stage_with_dcn=(False, True, True)', 'one bool per stage', 'num_stages=4']),
    'strides length': (
        dict(strides=(1, 2, 2)), ValueError,
        ['strides=(1, 2, 2)', 'one int per stage', 'num_stages=4']),
    'out_indices out of range': (
        dict(out_indices=(0, 4)), ValueError, ['out_indices=(0, 4)', 'indices in [0, 3]']),
    'plugin stages length': (
        dict(plugins=[dict(cfg=dict(type='ExternalAttentionBlock'), stages=(False, True),
                           position='after_conv3')]), ValueError,
        ['plugins[0].stages=(False, True)', 'one bool per stage', 'num_stages=4']),
    'frozen_stages out of range': (
        dict(frozen_stages=5), ValueError,
        ['frozen_stages=5', 'accepted -1', 'up to 4']),
    'depth': (dict(depth=42), ValueError, ['depth=42', 'is not one of', '50']),
    'LESA heads do not divide channels (named stage and block)': (
        dict(stage_ops=(None, None, dict(LESA, num_heads=7), None)), ValueError,
        ['stage_ops[2] (layer3[0].conv2', 'num_heads=7', 'must divide', 'out_channels=256']),
    'AA heads do not divide the key depth': (
        dict(stage_ops=(None, dict(AA, dk=164), None, None)), ValueError,
        ['stage_ops[1] (layer2[0].conv2', 'num_heads=8 must divide dk=164']),
    'AA key width below the minimum': (
        dict(stage_ops=(None, dict(AA, dk=64), None, None)), ValueError,
        ['AAConv2d: dk=64 gives 8 key dims per head', 'min_key_dims_per_head=20']),
    'LALayer heads do not divide channels': (
        dict(stage_ops=(dict(type='LALayer', num_heads=7), None, None, None)), ValueError,
        ['stage_ops[0] (layer1[0].conv2', 'LALayer: num_heads=7 must divide',
         'out_channels=64']),
    'LESA beyond_max not a choice': (
        dict(stage_ops=(None, None, dict(LESA, beyond_max='clip'), None)), ValueError,
        ["beyond_max='clip'", "('interpolate', 'error')"]),
    # issue 16 item 5: mistakes that reached tracebacks or passed silently
    'op_blocks repeated index': (
        dict(stage_ops=(None, None, LESA, None), op_blocks=('all', 'all', (0, 0), 'all')),
        ValueError, ['op_blocks[2]=(0, 0)', 'distinct ints in [0, 5]', 'stage 3 has 6 blocks']),
    'op_blocks entry None': (
        dict(stage_ops=(None, None, LESA, None), op_blocks=('all', 'all', None, 'all')),
        ValueError, ['op_blocks[2]=None', "accepted one of ('all', 'all_but_first', 'first', "
                     "'none')", 'block indices in [0, 5]']),
    'op_blocks bool index': (
        dict(stage_ops=(None, None, LESA, None), op_blocks=('all', 'all', [True], 'all')),
        ValueError, ['op_blocks[2]=[True]', 'distinct ints in [0, 5]']),
    'stage_ops type a class that is no operator': (
        dict(stage_ops=(None, None, dict(type=torch.nn.Conv2d), None)), ValueError,
        ['stage_ops[2].type=Conv2d', 'not an attention operator', 'registered:', 'LESA']),
    'dcn and an operator on one conv': (
        dict(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
             stage_with_dcn=(False, False, True, False), stage_ops=(None, None, LESA, None)),
        ValueError, ['stage_ops[2]=LESA and dcn (stage_with_dcn[2]=True)', 'layer3[0].conv2',
                     'Accepted: stage_with_dcn[2]=False', "LESA with unary='dcn'"]),
    'unknown keyword': (
        dict(deepth=50), TypeError,
        ["AttnResNet: unknown argument(s) 'deepth'", "did you mean 'depth'", 'accepted:',
         'base_channels', 'stage_ops']),
    'allow_uninitialised of the wrong type': (
        dict(allow_uninitialised=3), TypeError,
        ['allow_uninitialised=3', "accepted: False, True, 'operators'", 'or a sequence of fnmatch patterns']),
}


@pytest.mark.parametrize('name', list(BACKBONE_CASES))
def test_backbone_arguments(name):
    kw, exc, parts = BACKBONE_CASES[name]
    with raises(exc, *parts):
        build(**kw)


MRLA_CASES = {
    'MRLA head channels do not divide the block width': (
        dict(mrla_cfg=dict(head_channels=48)), ValueError,
        ['MRLA: head_channels=48', 'dividing channels=256']),
    'MRLA frozen_stages out of range': (
        dict(frozen_stages=-2), ValueError, ['frozen_stages=-2', 'in [-1, num_stages=4]']),
    'MRLA type': (dict(mrla_type='heavy'), ValueError, ["mrla_type='heavy'", "('light', 'base')"]),
}


@pytest.mark.parametrize('name', list(MRLA_CASES))
def test_mrla_backbone_arguments(name):
    kw, exc, parts = MRLA_CASES[name]
    with raises(exc, *parts):
        MODELS.build(dict(type='MRLAResNet', depth=50, **kw))


# --------------------------------------------------------------------------------- operators
OP_CASES = {
    'MultiHeadExternalAttention heads do not divide embed_dims': (
        dict(type='MultiHeadExternalAttention', embed_dims=100, num_heads=8), ValueError,
        ['num_heads=8 must divide embed_dims=100']),
    'ExternalAttention memory_size': (
        dict(type='ExternalAttention', channels=64, memory_size=0), ValueError,
        ['memory_size=0 must be a positive int']),
    'LALayer region smaller than the window': (
        dict(type='LALayer', in_channels=64, out_channels=64, region_size=1), ValueError,
        ['region_size=1 must be >= kernel_size=3']),
    'AA upsilon zero': (
        dict(AA, in_channels=64, out_channels=64, upsilon=0), ValueError,
        ['AAConv2d: upsilon=0 is out of range; accepted (0, 1]']),
    'AA kappa negative': (
        dict(AA, in_channels=64, out_channels=64, kappa=-0.2), ValueError,
        ['AAConv2d: kappa=-0.2 is out of range; accepted (0, inf)']),
    'LESA stride': (
        dict(LESA, in_channels=64, out_channels=64, stride=3), ValueError,
        ['LESA: stride=3 is not supported (accepted: 1, 2)']),
}


@pytest.mark.parametrize('name', list(OP_CASES))
def test_operator_arguments(name):
    cfg, exc, parts = OP_CASES[name]
    with raises(exc, *parts):
        MODELS.build(cfg)


def test_resnext_with_aa_names_the_groups_and_a_dv_that_fits():
    with raises(ValueError, 'stage_ops[1] (layer2[0].conv2', 'AAConv2d: groups=32 must divide',
                'out_channels - dv = 232', 'e.g. dv=32'):
        MODELS.build(dict(type='AttnResNeXt', depth=50, groups=32, base_width=4,
                          stage_ops=(None, AA, None, None)))
    # the suggested dv builds
    net = MODELS.build(dict(type='AttnResNeXt', depth=50, groups=32, base_width=4,
                            stage_ops=(None, dict(AA, dv=32), None, None),
                            op_blocks=('all', 'first', 'all', 'all')))
    assert net.layer2[0].conv2.conv.groups == 32


def test_lesa_dcn_unary_may_replace_a_dcn_conv():
    """The LESA-DCN configs' choice: LESA's deformable unary takes the DCN's place."""
    pytest.importorskip('mmcv.ops')
    net = build(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
                stage_with_dcn=(False, False, True, False),
                stage_ops=(None, None, dict(LESA, unary='dcn'), None),
                op_blocks=('all', 'all', 'all_but_first', 'all'))
    assert type(net.layer3[0].conv2).__name__ == 'DeformConv2dPack'
    assert type(net.layer3[1].conv2.x_transform[0]).__name__ == 'DeformConv2dPack'


@pytest.mark.parametrize('op', [
    dict(LESA, max_size=(4, 6), beyond_max='error'),
    dict(AA, max_size=(4, 6), beyond_max='error'),
])
def test_table_smaller_than_feature_map_with_beyond_max_error(op):
    """A feature map above the relative tables' maximum, interpolation off: the error names the
    table, the size and the maximum, and what to change."""
    m = MODELS.build(dict(op, in_channels=32, out_channels=64))
    name = 'LESA' if op['type'] == 'LESA' else 'AAConv2d'
    with raises(ValueError, f'{name} rel_width: size 7 exceeds the maximum 6',
                "beyond_max='error'", "beyond_max='interpolate'"):
        m(torch.randn(1, 32, 4, 7))
    # inside the maximum it runs
    assert m(torch.randn(1, 32, 4, 6)).shape[-2:] == (4, 6)


def test_wrong_input_channels_named():
    ea = MODELS.build(dict(type='ExternalAttention', channels=64))
    with raises(ValueError, 'ExternalAttention: expected input (B, 64, *spatial)',
                'got (1, 32, 5, 5)'):
        ea(torch.randn(1, 32, 5, 5))


# ------------------------------------------------------------- input sizes: where does it matter?
# Our operators accept any H, W (the output is ceil(H / stride) as for the 3x3 conv they replace),
# so no backbone input has to be a multiple of the stride. Where a size multiple does matter is
# the detector's FPN, whose data preprocessor pads to pad_size_divisor=32 (mmdet's own handling).
ODD_OPS = {
    'LESA': dict(LESA, max_size=8),
    'SA': dict(LESA, fusion='none', max_size=8),
    'AA': dict(AA, max_size=8),
    'LALayer': dict(type='LALayer'),
}


@pytest.mark.parametrize('name', list(ODD_OPS))
def test_odd_input_sizes_work(name):
    torch.manual_seed(0)
    ops = (None, None, ODD_OPS[name], ODD_OPS[name])
    net = build(stage_ops=ops, op_blocks=('none', 'none', 'all', 'all'), base_channels=16)
    ref = build(base_channels=16)
    for m in (net, ref):
        m.eval()
    x = torch.randn(1, 3, 37, 53)
    with torch.no_grad():
        outs, refs = net(x), ref(x)
    assert [o.shape for o in outs] == [r.shape for r in refs]
    assert refs[-1].shape[-2:] == (2, 2)  # ceil through the strides: 37x53 -> 2x2 at /32
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('mrla_type', ['light', 'base'])
def test_odd_input_sizes_mrla(mrla_type):
    net = MODELS.build(dict(type='MRLAResNet', depth=50, mrla_type=mrla_type)).eval()
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 37, 53))
    assert [tuple(o.shape[-2:]) for o in outs] == [(10, 14), (5, 7), (3, 4), (2, 2)]
