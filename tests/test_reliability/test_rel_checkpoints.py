"""Loading weights: every Pretrained load is reported, attention weights left uninitialised fail
loudly unless allowed, a checkpoint that does not fit the model is refused with its shapes."""
import os.path as osp

import pytest
import torch
from torch import nn

import mmattn  # noqa: F401
import mmattn.models.layers.aa_conv  # noqa: F401
import mmattn.models.layers.lesa  # noqa: F401
from mmattn.apis.runner import CheckpointMismatchError, check_checkpoint_fits
from mmattn.converters.mrla import convert_mrla
from mmattn.registry import MODELS
from mmattn.utils import checkpoint as checkpoint_check
from mmattn.utils.checkpoint import (CheckpointReadError, UninitialisedWeightsError,
                                     attention_state_keys, suggest_patterns)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(depth=50, base_channels=16, stem_channels=16)
LESA = dict(type='LESA', num_heads=2)
LESA_ALLOW = ('*.rel_height', '*.rel_width', '*.bn_output.*', '*.bn_similarity.*')


@pytest.fixture
def reports(monkeypatch):
    """The report lines the check logs."""
    lines = []
    monkeypatch.setattr(checkpoint_check, 'print_log',
                        lambda msg, **kw: lines.append(msg))
    return lines


def backbone(ckpt=None, prefix=None, **kw):
    cfg = dict(type='AttnResNet', **SMALL)
    cfg.update(kw)
    if ckpt:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=str(ckpt))
        if prefix:
            cfg['init_cfg']['prefix'] = prefix
    return MODELS.build(cfg)


def lesa_stages(pe_type, **kw):
    op = dict(LESA, pe_type=pe_type, max_size=7, **kw)
    return dict(stage_ops=(None, None, op, op), op_blocks=('none', 'none', 'all_but_first', 'all'))


def save(state, path):
    torch.save(state, str(path))
    return path


def test_classification_to_detection_lesa_needs_the_position_tables_allowed(tmp_path, reports):
    """The LESA detection configs' situation: a classification checkpoint (1-D offsets table
    `relative`, 3-term logit BN, 2C output BN) into detection operators (rel_height/rel_width,
    2-term logit BN, C output BN)."""
    src = backbone(**lesa_stages('classification'))
    ckpt = save(src.state_dict(), tmp_path / 'lesa_cls.pth')
    det = backbone(ckpt, **lesa_stages('detection_qr'))
    with pytest.raises(UninitialisedWeightsError) as info:
        det.init_weights()
    msg = str(info.value)
    assert 'attention-operator tensors missing from the checkpoint: 16' in msg
    assert 'layer3.1.conv2.rel_height' in msg and 'layer4.2.conv2.rel_width' in msg
    # shapes printed for the tensors that do not fit
    assert 'layer3.1.conv2.bn_similarity.weight (checkpoint (6,), model (4,))' in msg
    assert 'layer3.1.conv2.bn_output.weight (checkpoint (128,), model (64,))' in msg
    # the fix is spelled out
    assert f'allow_uninitialised={LESA_ALLOW!r}' in msg
    assert any('unexpected (in the checkpoint, not in the model) 8: layer3.1.conv2.relative'
               in r for r in reports)

    reports.clear()
    det = backbone(ckpt, allow_uninitialised=LESA_ALLOW, **lesa_stages('detection_qr'))
    det.init_weights()
    assert len(reports) == 1 and 'shape mismatch 64' in reports[0]
    # everything else did load
    loaded = det.state_dict()
    for k, v in src.state_dict().items():
        if k in loaded and loaded[k].shape == v.shape:
            assert torch.equal(loaded[k], v), k


def test_converted_checkpoint_without_operator_keys_fails(tmp_path):
    """A plain-ResNet checkpoint (e.g. a converter that dropped the operator keys) into an
    LA-layer backbone: every LALayer tensor would stay random."""
    plain = backbone()
    ckpt = save(plain.state_dict(), tmp_path / 'plain.pth')
    net = backbone(ckpt, stage_ops=(dict(type='LALayer'), ) * 4)
    with pytest.raises(UninitialisedWeightsError, match='attention-operator tensors missing '
                       r'from the checkpoint: \d+: layer1.0.conv2.k_proj.weight'):
        net.init_weights()
    backbone(ckpt, stage_ops=(dict(type='LALayer'), ) * 4,
             allow_uninitialised=True).init_weights()  # True: report only


def test_mrla_converter_output_of_a_plain_resnet_fails_at_load(tmp_path):
    """`convert_mrla` accepts a torchvision ResNet (no MRLA key in it); loading the result into
    MRLAResNet then stops, naming the MRLA tensors (mrla, bn_mrla) it lacks."""
    plain = MODELS.build(dict(type='AttnResNet', **SMALL))
    state, report = convert_mrla({'state_dict': {'module.' + k: v
                                                 for k, v in plain.state_dict().items()}})
    assert report['mrla_type'] is None
    ckpt = save(state, tmp_path / 'converted.pth')
    net = MODELS.build(dict(type='MRLAResNet', **SMALL,
                            init_cfg=dict(type='Pretrained', checkpoint=str(ckpt))))
    with pytest.raises(UninitialisedWeightsError) as info:
        net.init_weights()
    assert 'layer1.0.bn_mrla.weight' in str(info.value)
    assert 'layer1.0.mrla.mrla.Wq.weight' in str(info.value)
    assert "'*.bn_mrla.*'" in str(info.value) and "'*.lambda_t'" in str(info.value)


def test_classifier_checkpoint_without_prefix_loads_nothing(tmp_path):
    net = backbone(**lesa_stages('detection_qr'))
    ckpt = save({'state_dict': {'backbone.' + k: v for k, v in net.state_dict().items()}},
                tmp_path / 'cls.pth')
    with pytest.raises(UninitialisedWeightsError,
                       match=r"no tensor of the checkpoint was loaded .*start with "
                       r"\['backbone.'\].*prefix='backbone.'"):
        backbone(ckpt, **lesa_stages('detection_qr')).init_weights()
    backbone(ckpt, prefix='backbone.', **lesa_stages('detection_qr')).init_weights()
    with pytest.raises(UninitialisedWeightsError,
                       match=r"no checkpoint key starts with prefix='neck.'.*\['backbone.'\]"):
        backbone(ckpt, prefix='neck.', **lesa_stages('detection_qr')).init_weights()


def test_shape_mismatch_outside_the_operators_fails_with_shapes(tmp_path):
    wide = backbone(base_channels=32)
    ckpt = save(wide.state_dict(), tmp_path / 'wide.pth')
    with pytest.raises(UninitialisedWeightsError,
                       match=r'layer1.0.conv1.weight \(checkpoint \(32, 16, 1, 1\), '
                       r'model \(16, 16, 1, 1\)\)'):
        backbone(ckpt).init_weights()


def test_missing_plain_tensors_are_reported_not_refused(tmp_path, reports):
    """DCN offsets start at zero by design: a plain checkpoint into a DCN backbone loads."""
    ckpt = save(backbone().state_dict(), tmp_path / 'plain.pth')
    backbone(ckpt, dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
             stage_with_dcn=(False, True, False, False)).init_weights()
    assert 'missing from the checkpoint 8: layer2.0.conv2.conv_offset.bias' in reports[0]


def test_full_match_is_reported(tmp_path, reports):
    src = backbone(**lesa_stages('detection_qr'))
    ckpt = save(src.state_dict(), tmp_path / 'same.pth')
    backbone(ckpt, **lesa_stages('detection_qr')).init_weights()
    n = len([k for k in src.state_dict() if not k.endswith('num_batches_tracked')])
    assert reports == [f"AttnResNet: loaded {n}/{n} tensors from '{ckpt}'; missing from the "
                       'checkpoint 0; unexpected (in the checkpoint, not in the model) 0; shape '
                       'mismatch 0']


def test_allow_pattern_matching_nothing_is_an_error(tmp_path):
    ckpt = save(backbone().state_dict(), tmp_path / 'plain.pth')
    with pytest.raises(ValueError, match=r"allow_uninitialised patterns \['\*.rel_hieght'\] "
                       'match no state-dict key'):
        backbone(ckpt, allow_uninitialised=('*.rel_hieght', ),
                 **lesa_stages('detection_qr')).init_weights()


def test_attention_keys_and_suggestions():
    net = MODELS.build(dict(type='MRLAResNet', depth=50))
    keys = attention_state_keys(net)
    assert 'layer1.0.mrla.lambda_t' in keys and 'layer1.0.bn_mrla.running_var' in keys
    assert not any('conv1' in k or 'bn3' in k for k in keys)
    assert suggest_patterns(['layer3.1.conv2.x_transform.0.weight', 'conv1.weight',
                             'layer3.1.conv2.rel_height']) == (
                                 '*.x_transform.0.*', 'conv1.*', '*.rel_height')


# ----------------------------------------------------------- tools/test.py: does the checkpoint fit
def test_checkpoint_that_does_not_fit_is_refused_with_shapes(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ckpt = save({'state_dict': other.state_dict(), 'meta': {}}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r"does not fit .*shape mismatch 6: 0.bias: checkpoint \(4,\), "
                       r'model \(8,\).*--allow-partial-checkpoint'):
        check_checkpoint_fits(model, str(ckpt))
    report = check_checkpoint_fits(model, str(ckpt), allow_partial=True)
    assert report['loaded'] == 0 and len(report['mismatched']) == 6
    partial = save({'state_dict': {k: v for k, v in model.state_dict().items()
                                   if k.startswith('0.')}}, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointMismatchError, match=r'missing from the checkpoint 4: 1.bias'):
        check_checkpoint_fits(model, str(partial))
    junk = save({'epoch': 3, 'note': 'hello'}, tmp_path / 'junk.pth')
    with pytest.raises(CheckpointMismatchError, match="holds no state dict of tensors"):
        check_checkpoint_fits(model, str(junk))


# ------------------------------------------------------- the configs that need allow_uninitialised
# (detection config, ImageNet config its backbone is trained by, what must be allowed)
CONFIG_PAIRS = {
    'lesa': ('lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py', 'lesa/lesa-r50_4xb32-cos-90e_in1k.py',
             LESA_ALLOW),
    'lesa-dcn': ('lesa/mask-rcnn_lesa-dcn-r50_fpn_20e_coco.py',
                 'lesa/lesa-r50_4xb32-cos-90e_in1k.py',
                 ('*.rel_height', '*.rel_width', '*.conv_offset.*', '*.bn_output.*',
                  '*.bn_similarity.*')),
    'aa': ('aa/retinanet_aa-r50_fpn_1x_coco.py', 'aa/aa-r50_8xb32-100e_in1k.py',
           ('*.rel_height', '*.rel_width')),
    'la_layer': ('la_layer/faster-rcnn_la-r50_fpn_ms-range-1x_coco.py',
                 'la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py', ()),
    'mrla': ('mrla/retinanet_mrla-light-r50_fpn_1x_coco.py',
             'mrla/mrla-light-r50_8xb32_in1k.py', ()),
}


@pytest.mark.slow
@pytest.mark.parametrize('method', list(CONFIG_PAIRS))
def test_detection_config_from_its_imagenet_backbone(method, tmp_path):
    """The detection config's backbone initialised from the backbone its ImageNet config trains:
    which tensors start fresh (and so must be allowed by the config) and that everything else
    loads. LESA: position encoding and logit/output norms (pe_type differs), with a deformable
    unary term also its offsets (zero-initialised by design); AA: the relative tables (sized
    for 224 px in ImageNet, for 1333 px in detection); LA-layer, MRLA: nothing."""
    from mmengine.config import Config
    det_file, cls_file, needed = CONFIG_PAIRS[method]
    det_cfg = Config.fromfile(osp.join(REPO, 'configs', det_file)).model.backbone
    cls_cfg = Config.fromfile(osp.join(REPO, 'configs', cls_file)).model.backbone
    source = MODELS.build(cls_cfg)
    prefix = det_cfg.init_cfg.get('prefix') or ''
    ckpt = save({'state_dict': {prefix + k: v for k, v in source.state_dict().items()}},
                tmp_path / 'in1k.pth')
    det_cfg.init_cfg.checkpoint = str(ckpt)
    det_cfg.pop('allow_uninitialised', None)
    if needed:
        with pytest.raises(UninitialisedWeightsError) as info:
            MODELS.build(det_cfg).init_weights()
        assert f'allow_uninitialised={needed!r}' in str(info.value)
    net = MODELS.build(dict(det_cfg, allow_uninitialised=needed or False))
    net.init_weights()
    src = source.state_dict()
    for k, v in net.state_dict().items():
        if k in src and src[k].shape == v.shape:
            assert torch.equal(v, src[k]), k


# ------------------------------------------------------------ converters fed the wrong checkpoint
def _mrla_cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mrla_to_mmattn', osp.join(REPO, 'tools/model_converters/mrla_to_mmattn.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('kind', ['plain-resnet', 'detector'])
def test_mrla_converter_refuses_a_checkpoint_without_mrla(kind, tmp_path):
    sd = backbone().state_dict()
    if kind == 'detector':
        sd = {'backbone.' + k: v for k, v in sd.items()}
    src = save({'state_dict': sd}, tmp_path / 'src.pth')
    dst = tmp_path / 'dst.pth'
    try:
        rc = _mrla_cli().main([str(src), str(dst)])
    except ValueError as e:
        rc = str(e)
    assert rc != 0 and not dst.exists()


def test_mrla_converter_on_a_file_that_is_no_checkpoint(tmp_path):
    src = tmp_path / 'notes.pth'
    src.write_text('not a checkpoint')
    with pytest.raises((ValueError, SystemExit), match='not a PyTorch checkpoint'):
        _mrla_cli().main([str(src), str(tmp_path / 'dst.pth')])


def _lesa_cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'lesa_to_mmattn', osp.join(REPO, 'tools/model_converters/lesa_to_mmattn.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not osp.exists(osp.join(REPO, 'tools/model_converters/lesa_to_mmattn.py')),
                    reason='no LESA converter')
@pytest.mark.parametrize('kind', ['plain-resnet', 'detector', 'mrla'])
def test_lesa_converter_refuses_a_checkpoint_without_lesa(kind, tmp_path, capsys):
    if kind == 'mrla':
        sd = MODELS.build(dict(type='MRLAResNet', **SMALL)).state_dict()
    else:
        sd = backbone().state_dict()
    sd = {('backbone.' if kind == 'detector' else 'module.') + k: v for k, v in sd.items()}
    src = save({'state_dict': sd}, tmp_path / 'src.pth')
    dst = tmp_path / 'dst.pth'
    assert _lesa_cli().main([str(src), str(dst)]) == 1 and not dst.exists()
    assert ('refused: convert_lesa: no LESA tensor (*.conv2.qkv_transform.weight) in this '
            'checkpoint') in capsys.readouterr().err


@pytest.mark.skipif(not osp.exists(osp.join(REPO, 'tools/model_converters/lesa_to_mmattn.py')),
                    reason='no LESA converter')
def test_lesa_converter_on_a_file_that_is_no_checkpoint(tmp_path):
    src = tmp_path / 'notes.pth'
    src.write_text('not a checkpoint')
    with pytest.raises((ValueError, SystemExit), match='not a PyTorch checkpoint'):
        _lesa_cli().main([str(src), str(tmp_path / 'dst.pth')])


@pytest.mark.skipif(not osp.exists(osp.join(REPO, 'mmattn/converters/lesa.py')),
                    reason='no LESA converter')
def test_lesa_converter_drop_position_then_detection_init(tmp_path):
    """The documented path from an official classification checkpoint to a detection backbone
    (`--drop-position`): the position layers are missing, so the detection backbone needs them
    allowed, and with the allow argument every converted tensor loads."""
    from mmattn.converters.lesa import convert_lesa
    cls = backbone(**lesa_stages('classification'))
    official = {'net': {'module.' + k: v for k, v in cls.state_dict().items()}, 'epoch': 1}
    state, report = convert_lesa(official, target='backbone', drop_position=True)
    assert report['dropped_position']
    ckpt = save(state, tmp_path / 'converted.pth')
    with pytest.raises(UninitialisedWeightsError) as info:
        backbone(ckpt, **lesa_stages('detection_qr')).init_weights()
    # 8 LESA blocks x (2 tables + 2 norms x 4 tensors), all missing now, none of another shape
    assert 'attention-operator tensors missing from the checkpoint: 80: ' in str(info.value)
    assert 'shape differs' not in str(info.value)
    det = backbone(ckpt, allow_uninitialised=LESA_ALLOW, **lesa_stages('detection_qr'))
    det.init_weights()
    loaded = det.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)


# ------------------------------------------------------------- one reader for every entry point
def _checkpoint_bytes(tmp_path):
    path = save({'state_dict': {'w': torch.ones(64, 64)}, 'meta': {}}, tmp_path / 'good.pth')
    return path.read_bytes()


def _one_line(err):
    text = str(err)
    assert '\n' not in text and '\x1b' not in text, text
    return text


@pytest.mark.parametrize('kind,message', [
    ('truncated', r'is truncated \(\d+ bytes, the end of the zip archive is missing\)'),
    ('empty', r'is empty \(0 bytes\)'),
    ('text', r"is not a PyTorch checkpoint \(it starts with b'epoc'"),
])
def test_broken_files_fail_in_one_line_naming_the_file(kind, message, tmp_path):
    """Pretrained init, tools/test.py and --resume read through mmengine's loader (mmattn's
    reader); the message names the file and what is wrong."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / f'{kind}.pth'
    data = _checkpoint_bytes(tmp_path)
    path.write_bytes({'truncated': data[:len(data) // 2], 'empty': b'',
                      'text': b'epoch 3: loss 0.1\n'}[kind])
    with pytest.raises(CheckpointReadError) as info:
        _load_checkpoint(str(path), map_location='cpu')
    text = _one_line(info.value)
    assert repr(str(path)) in text
    assert re_search(message, text)
    # the converters' reader says the same, as the one line a command-line tool exits with
    from mmattn.converters.cli import load_source
    with pytest.raises(SystemExit) as info:
        load_source(str(path))
    assert re_search(message, _one_line(info.value.code))


def re_search(pattern, text):
    import re
    return re.search(pattern, text) is not None


class _Opaque:
    """A Python object a checkpoint may hold (as argparse.Namespace in official ones)."""


def test_python_objects_name_the_opt_in_of_each_entry_point(tmp_path, monkeypatch):
    import argparse
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmattn.converters.cli import load_source
    path = save({'state_dict': {'w': torch.ones(2)}, 'args': argparse.Namespace(lr=0.1)},
                tmp_path / 'official.pth')
    with pytest.raises(CheckpointReadError) as info:
        _load_checkpoint(str(path), map_location='cpu')
    text = _one_line(info.value)
    assert "argparse.Namespace" in text and 'set MMATTN_TRUST_CHECKPOINTS=1' in text
    with pytest.raises(SystemExit) as info:
        load_source(str(path))
    text = _one_line(info.value.code)
    assert 'argparse.Namespace' in text and 'pass --unsafe-load' in text
    assert 'MMATTN_TRUST' not in text and 'not a PyTorch checkpoint' not in text
    assert load_source(str(path), unsafe=True)['args'].lr == 0.1
    monkeypatch.setenv('MMATTN_TRUST_CHECKPOINTS', '1')
    assert _load_checkpoint(str(path), map_location='cpu')['args'].lr == 0.1


def test_right_names_wrong_shapes_gets_no_prefix_hint(tmp_path):
    """Another architecture with the same key names (a ResNet-50 of another width): every name
    fits, no shape does; the advice is about the architecture, not about a prefix."""
    other = MODELS.build(dict(type='AttnResNet', depth=50, base_channels=8, stem_channels=8))
    ckpt = save(other.state_dict(), tmp_path / 'narrow.pth')
    with pytest.raises(UninitialisedWeightsError) as info:
        backbone(ckpt).init_weights()
    text = str(info.value)
    assert 'match a key but not its shape' in text and 'another architecture' in text
    assert "prefix='backbone.'" not in text


# ----------------------------------------------------------------------- ImageNet ResNet init
IMAGENET_INIT = {
    'LESA': dict(type='AttnResNet', depth=50, stage_ops=(None, None, LESA, LESA),
                 op_blocks=('all', 'all', 'all_but_first', 'all')),
    'AAConv2d': dict(type='AttnResNet', depth=50,
                     stage_ops=(None, ) + (dict(type='AAConv2d'), ) * 3),
    'LALayer': dict(type='AttnResNet', depth=50, stage_ops=(dict(type='LALayer'), ) * 4),
    'MRLAResNet': dict(type='MRLAResNet', depth=50),
}


@pytest.fixture(scope='module')
def plain_resnet50(tmp_path_factory):
    """A plain ImageNet-layout ResNet-50 state dict (torchvision's key names), saved locally,
    and the same as an mmpretrain ImageClassifier checkpoint (``backbone.``, ``head.fc``)."""
    from mmseg.models.backbones import ResNet
    torch.manual_seed(0)
    sd = ResNet(depth=50).state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}
    sd['fc.weight'], sd['fc.bias'] = torch.randn(1000, 2048), torch.randn(1000)
    tmp = tmp_path_factory.mktemp('resnet50')
    tv = save(sd, tmp / 'resnet50_torchvision.pth')
    mmpre = {'backbone.' + k: v for k, v in sd.items() if not k.startswith('fc.')}
    mmpre.update({'head.fc.weight': sd['fc.weight'], 'head.fc.bias': sd['fc.bias']})
    pre = save({'state_dict': mmpre, 'meta': {}}, tmp / 'resnet50_mmpretrain.pth')
    return sd, tv, pre


@pytest.mark.slow
@pytest.mark.parametrize('name', list(IMAGENET_INIT))
def test_imagenet_resnet_init_loads_the_convs_and_trains(name, plain_resnet50, reports):
    """The documented path (allow_uninitialised='operators'): every tensor outside the
    operators loads, the operators keep their own init, the report names exactly those, and a
    training step runs. Without the preset the same load stops."""
    sd, tv, pre = plain_resnet50
    cfg = dict(IMAGENET_INIT[name], init_cfg=dict(type='Pretrained', checkpoint=str(tv)))
    with pytest.raises(UninitialisedWeightsError, match="allow_uninitialised='operators'"):
        MODELS.build(cfg).init_weights()
    net = MODELS.build(dict(cfg, allow_uninitialised='operators'))
    net.init_weights()
    attention = set(attention_state_keys(net))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    loaded = [k for k in state if k in sd and sd[k].shape == state[k].shape
              and not k.endswith('num_batches_tracked')]
    assert loaded and all(torch.equal(state[k], sd[k]) for k in loaded)
    report = net.load_report
    assert report['fresh'] and set(report['fresh']) <= attention
    assert set(report['fresh']) == {k for k in attention
                                   if k not in sd or sd[k].shape != state[k].shape}
    assert f'attention-operator tensors starting from their own init {len(report["fresh"])}' \
        in reports[-1]
    # everything of the backbone is either loaded or an operator tensor
    assert set(loaded) | attention >= {k for k in state if not k.endswith('num_batches_tracked')}
    # the mmpretrain layout through prefix='backbone.' loads the same tensors
    net2 = MODELS.build(dict(cfg, allow_uninitialised='operators',
                             init_cfg=dict(type='Pretrained', checkpoint=str(pre),
                                           prefix='backbone.')))
    net2.init_weights()
    assert net2.load_report['fresh'] == report['fresh']
    # one training step
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss = sum(o.float().pow(2).mean() for o in net(torch.randn(2, 3, 64, 64)))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(p, state[k]) for k, p in net.named_parameters() if k in loaded)


def test_torchvision_names_resolve_from_the_hub_cache_without_torchvision(
        plain_resnet50, tmp_path, monkeypatch):
    """mmdet's bases name 'torchvision://resnet50'; mmattn's stand-in has no torchvision.models,
    so mmengine's own loader died with an AttributeError. Cached: loads; offline and not
    cached: one line with the URL and where to put the file."""
    import shutil
    import urllib.error

    import mmengine
    from mmengine.runner import checkpoint as mmengine_ckpt
    _, tv, _ = plain_resnet50
    url = mmengine.load(osp.join(mmengine.__path__[0], 'hub/torchvision_0.12.json'))['resnet50']
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')

    monkeypatch.setattr(mmengine_ckpt, 'load_from_http', offline)
    cfg = dict(IMAGENET_INIT['AAConv2d'], allow_uninitialised='operators',
               init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))
    with pytest.raises(FileNotFoundError) as info:
        MODELS.build(cfg).init_weights()
    text = _one_line(info.value)
    assert "init_cfg.checkpoint='torchvision://resnet50'" in text and url in text
    assert osp.join(str(tmp_path), 'hub', 'checkpoints', osp.basename(url)) in text
    cached = tmp_path / 'hub' / 'checkpoints' / osp.basename(url)
    cached.parent.mkdir(parents=True)
    shutil.copy(tv, cached)
    net = MODELS.build(cfg)
    net.init_weights()
    assert net.load_report['loaded'] > 200


def test_missing_pretrained_file_names_the_key_and_the_model_zoo(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        backbone(tmp_path / 'checkpoints' / 'lesa-r50_in1k_mmattn.pth').init_weights()
    text = _one_line(info.value)
    assert 'AttnResNet init_cfg.checkpoint=' in text and "README.md, 'Model zoo'" in text
    assert 'init_cfg=None' in text


# ------------------------------------------------- a whole-model checkpoint of another model
class _Detector(nn.Module):
    """What mmdet's load_from / DetInferencer load into: a model with a ``backbone``."""

    def __init__(self, **kw):
        super().__init__()
        self.backbone = backbone(**kw)
        self.head = nn.Conv2d(2048 // 4, 3, 1)


def test_whole_model_checkpoint_of_another_model_stops_at_the_backbone(tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint
    plain = _Detector()
    ckpt = save({'state_dict': plain.state_dict(), 'meta': {}}, tmp_path / 'plain.pth')
    model = _Detector(**lesa_stages('detection_qr'))
    with pytest.raises(UninitialisedWeightsError,
                       match=r'loading a checkpoint into the model \(backbone keys backbone\.\*\)'
                       r' left weights uninitialised: attention-operator tensors missing'):
        load_checkpoint(model, str(ckpt), map_location='cpu')
    # its own checkpoint (resume, test) loads
    own = save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'own.pth')
    load_checkpoint(model, str(own), map_location='cpu')
    # --allow-partial-checkpoint: the backbone's check stands down too
    check_checkpoint_fits(model, str(ckpt), allow_partial=True)
    load_checkpoint(model, str(ckpt), map_location='cpu')


def test_an_operator_registered_in_one_place_is_checked():
    """A test-only 3x3 operator, registered through the contract and nothing else: its tensors
    count as operator tensors (fresh under the ImageNet init, refused otherwise)."""
    from mmattn.models.layers.base import AttnOperator, register_operator

    @register_operator(name='_ScratchDepthwiseOp', force=True)
    class _ScratchDepthwiseOp(AttnOperator):

        def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1,
                     dilation=1, groups=1, bias=False, init_cfg=None):
            super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                             groups, bias, init_cfg=init_cfg)
            self.dw = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels)
            self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)

        def forward(self, x):
            return self.pw(self.dw(x))

    from mmattn.models.layers import base
    try:
        net = backbone(stage_ops=(None, None, None, dict(type='_ScratchDepthwiseOp')))
    finally:  # other tests iterate over every registered operator
        base._OPERATORS.pop('_ScratchDepthwiseOp', None)
        MODELS.module_dict.pop('_ScratchDepthwiseOp', None)
    keys = attention_state_keys(net)
    assert keys and all(k.startswith('layer4.') and '.conv2.' in k for k in keys)
    assert {k.rsplit('.', 2)[-2] for k in keys} == {'dw', 'pw'}
