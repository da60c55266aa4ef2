"""Attention maps (issue 18): what the operators record under ``record_attention``, checked
against their explicit paths, and the PNGs of mmattn.analysis.attention_maps /
tools/analysis_tools/attention_map.py."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmattn.analysis import attention_maps as am
from mmattn.models.layers import LESA, AAConv2d, LALayer
from mmattn.models.layers.attention import explicit_relative_attention
from mmattn.models.layers.base import record_attention
from mmattn.models.layers.external_attention import ExternalAttention, double_normalization
from mmattn.models.layers.mrla import MRLABase, MRLALight
from mmattn.models.layers.position import slice_relative_table

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
IMG = 48  # image side of the drawings; the feature maps are IMG / 8


def _ops():
    torch.manual_seed(0)
    aa = dict(dk=8, dv=8, num_heads=2, min_key_dims_per_head=4, max_size=8)
    return {
        'LESA': LESA(16, 16, num_heads=2, max_size=8),
        'LESA-cls': LESA(16, 16, num_heads=2, max_size=6, pe_type='classification'),
        'SA': LESA(16, 16, num_heads=2, max_size=8, fusion='none'),
        'AA': AAConv2d(16, 16, **aa),
        'AA-s2': AAConv2d(16, 16, stride=2, **aa),
        'LA': LALayer(16, 16, num_heads=2),
        'EA': ExternalAttention(16, 8),
    }


@pytest.fixture(scope='module')
def ops():
    ops = _ops()
    for m in ops.values():
        m.eval()
    return ops


@pytest.fixture(scope='module')
def x():
    return torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope='module')
def image():
    return am.toy_image(0, IMG)


def _check_png(path, min_bytes=2000):
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes
    from PIL import Image
    pixels = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32)
    assert pixels.std() > 10  # not a blank canvas


@pytest.mark.parametrize('name', ['LESA', 'LESA-cls', 'SA', 'AA', 'AA-s2', 'LA', 'EA'])
def test_off_is_bit_identical_and_stores_nothing(ops, x, name):
    m = ops[name]
    before = m(x)
    with record_attention(m) as maps:
        m(x)
    assert set(maps) == {''}
    after = m(x)
    assert torch.equal(before, after)
    assert m.attention_record is None and 'record_attention' not in m.__dict__
    # chosen by name: only that module records
    with record_attention(torch.nn.ModuleDict(dict(a=m)), []) as maps:
        m(x)
    assert maps == {} and m.attention_record is None


def test_unknown_layer_is_refused(ops):
    with pytest.raises(ValueError, match=r"'nope' is not an attention module .*\(accepted: a;"):
        with record_attention(torch.nn.ModuleDict(dict(a=ops['AA'])), ['nope']):
            pass


def _reference_probs(q, k, rel_h=None, rel_w=None, size=None, logit_norm=None):
    # the explicit path with identity values: its output is the probabilities
    L = q.shape[2]
    eye = torch.eye(L).expand(q.shape[0], q.shape[1], L, L)
    return explicit_relative_attention(q, k, eye, rel_h, rel_w, size, logit_norm)


@pytest.mark.parametrize('name', ['LESA', 'SA'])
def test_lesa_probs_equal_explicit_path(ops, x, name):
    m = ops[name]
    with record_attention(m) as maps:
        out = m(x)
    rec = maps['']
    torch.testing.assert_close(out, m(x), rtol=1e-5, atol=1e-5)  # explicit vs fused output
    q, k, _ = (t.transpose(2, 3) for t in m._qkv(x))
    ref = _reference_probs(q, k, slice_relative_table(m.rel_height, 6),
                           slice_relative_table(m.rel_width, 6), (6, 6), m.bn_similarity)
    assert rec['probs'].shape == (2, 2, 36, 36) and rec['size'] == (6, 6)
    torch.testing.assert_close(rec['probs'], ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rec['probs'].sum(-1), torch.ones(2, 2, 36))
    if name == 'LESA':  # out = gate * binary + unary
        torch.testing.assert_close(rec['gate'] * rec['binary'] + rec['unary'], out)
    else:
        assert set(rec) == {'probs', 'size'}


def test_lesa_classification_probs_sum_to_one(ops, x):
    with record_attention(ops['LESA-cls']) as maps:
        ops['LESA-cls'](x)
    probs = maps['']['probs']
    assert probs.shape == (2, 2, 36, 36)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 2, 36))


@pytest.mark.parametrize('name', ['AA', 'AA-s2'])
def test_aa_probs_equal_explicit_path(ops, x, name):
    m = ops[name]
    with record_attention(m) as maps:
        out = m(x)
    torch.testing.assert_close(out, m(x), rtol=1e-5, atol=1e-5)
    a_in = m.pool(x) if m.stride > 1 else x
    h, w = a_in.shape[-2:]
    q, k, _ = m.qkv_conv(a_in).flatten(2).split([m.dk, m.dk, m.dv], 1)
    q = q.reshape(2, 2, m.dkh, h * w).transpose(2, 3) * m.dkh**-0.5
    k = k.reshape(2, 2, m.dkh, h * w).transpose(2, 3)
    ref = _reference_probs(q, k, slice_relative_table(m.rel_height, h),
                           slice_relative_table(m.rel_width, w), (h, w))
    rec = maps['']
    assert rec['size'] == (h, w) == ((3, 3) if m.stride > 1 else (6, 6))
    torch.testing.assert_close(rec['probs'], ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rec['probs'].sum(-1), torch.ones(2, 2, h * w))


def test_la_points_in_region_and_probs_reproduce_output(ops, x):
    m = ops['LA']
    with torch.no_grad():  # offsets away from zero, so the points really move
        m.offset_head.weight.normal_(0, 1.0)
    with record_attention(m) as maps:
        out = m(x)
    rec = maps['']
    probs, points = rec['probs'], rec['points']
    assert probs.shape == (2, 2, 9, 6, 6) and points.shape == (2, 2, 9, 6, 6)
    torch.testing.assert_close(probs.sum(2), torch.ones(2, 2, 6, 6))
    assert rec['region'] == (m.region_size - 1) // 2 * m.dilation == 3
    assert points.abs().max() <= rec['region'] + 1e-5
    window = torch.tensor([-1., 0., 1.])
    assert (points[:, 0] - window.repeat(3).view(1, 9, 1, 1)).abs().max() > 0.5  # deformed
    # the recorded weights are the ones the layer sums its values with
    disp = m._displacements(m.offsets(x))
    values = m._sample([m.v_proj(x)], disp)[0]                  # (B, m, d, k*k, H, W)
    torch.testing.assert_close((probs.unsqueeze(2) * values).sum(3).reshape(2, 16, 6, 6), out,
                               rtol=1e-5, atol=1e-5)


def test_ea_probs_over_memory_units(ops, x):
    m = ops['EA']
    with record_attention(m) as maps:
        m(x)
    probs = maps['']['probs']
    assert probs.shape == (2, 8, 36) and maps['']['size'] == (6, 6)
    ref = double_normalization(m.mk(x.flatten(2)), token_dim=2, memory_dim=1, eps=m.eps)
    torch.testing.assert_close(probs, ref)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 36))


def _mrla_stage(x, blocks=3):
    torch.manual_seed(0)
    mods = torch.nn.ModuleList(MRLABase(16, head_channels=4) for _ in range(blocks))
    with record_attention(mods) as maps:
        keys, values = [], []
        for mod in mods:
            _, k, v = mod(x, keys, values)
            keys.append(k)
            values.append(v)
    return mods, maps


def test_mrla_layer_attention_sums_to_one(x):
    mods, maps = _mrla_stage(x)
    assert all(m.attention_record is None and m.record_attention is False for m in mods)
    keys, values = [], []
    for mod in mods:  # off again: nothing stored
        out, k, v = mod(x, keys, values)
        keys.append(k)
        values.append(v)
    assert mods[2].attention_record is None
    probs = maps['2']['probs']                                  # block 3 over blocks 1..3
    assert probs.shape == (2, 4, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4))
    qs, ks = zip(*(mod.mrla(x)[:2] for mod in mods))
    ref = (torch.einsum('bgd,bgtd->bgt', qs[2], torch.stack(ks, 2)) / 2).softmax(-1)
    torch.testing.assert_close(probs, ref)
    light = MRLALight(16, head_channels=4, use_lambda=False)
    with record_attention(light) as maps:
        light(x)
    assert maps['']['gate'].shape == (2, 4)


@pytest.mark.parametrize('name', ['LESA', 'AA', 'LA', 'EA', 'MRLA'])
def test_drawing_is_written(ops, image, tmp_path, name):
    x = am.to_input(image, am.IMAGENET_MEAN, am.IMAGENET_STD)
    stem = torch.nn.Conv2d(3, 16, 8, stride=8)                  # 48 -> 6x6 features
    with torch.no_grad():
        feats = stem(x)
    if name == 'MRLA':
        _, maps = _mrla_stage(feats)
        record, kind = maps['2'], 'MRLABase'
    else:
        with record_attention(ops[name]) as maps:
            ops[name](feats)
        record, kind = maps[''], type(ops[name]).__name__
    out = str(tmp_path / f'{name}.png')
    assert am.draw_record(record, image, (20, 30), name, kind, f'{name}, random weights',
                          out) == out
    _check_png(out)


def test_cli_list_layers_and_png(tmp_path, capsys):
    import runpy
    tool = runpy.run_path(osp.join(osp.dirname(__file__), '..', '..', 'tools', 'analysis_tools',
                                   'attention_map.py'))
    cfg = 'configs/la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py'
    layers = tool['main']([cfg, '--list-layers'])
    assert len(layers) == 16 and set(layers.values()) == {'LALayer'}
    assert 'backbone.layer1.0.conv2\tLALayer' in capsys.readouterr().out
    out = str(tmp_path / 'la.png')
    tool['main']([cfg, 'toy:3', '--layer', 'backbone.layer2.1.conv2', '--query', '20', '40',
                  '--img-size', '64', '--out', out])
    _check_png(out)
    with pytest.raises(ValueError, match="--layer 'conv1' is not an attention layer"):
        tool['main']([cfg, 'toy', '--layer', 'conv1', '--img-size', '64', '--out', out])
    # a layer outside the backbone: the whole segmentor runs (EANet's decode head)
    out = str(tmp_path / 'ea.png')
    tool['main'](['configs/external_attention/eanet_r50-d8_4xb4-80k_ade20k-512x512.py', 'toy',
                  '--layer', 'decode_head.ea.ea', '--img-size', '64', '--out', out])
    _check_png(out)


def test_contract_doc_example_runs():
    # the example of docs/dev/operator_contract.md's "Attention maps" section, as written
    doc = osp.join(osp.dirname(__file__), '..', '..', 'docs', 'dev', 'operator_contract.md')
    text = open(doc).read().split('## Attention maps', 1)[1]
    code = text.split('```python\n', 1)[1].split('```', 1)[0]
    exec(compile(code, doc, 'exec'), {})
