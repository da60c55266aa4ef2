"""Official MRLA checkpoint -> mmattn keys (mmattn/converters/mrla.py and its CLI)."""
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch

from mmattn.converters.mrla import convert_mrla

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# official ECA kernel sizes per stage (the note: 5 for 256/512/1024 channels, 7 for 2048)
K_SIZES = (5, 5, 5, 7)
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _bn(sd, prefix, c):
    sd[prefix + 'weight'] = torch.rand(c)
    sd[prefix + 'bias'] = torch.randn(c)
    sd[prefix + 'running_mean'] = torch.randn(c)
    sd[prefix + 'running_var'] = torch.rand(c) + 0.5
    sd[prefix + 'num_batches_tracked'] = torch.tensor(7)


def official_state_dict(depth=50, mrla_type='light', old_names=False, fc=True):
    """An official-layout state dict built from the note's names and shapes (torchvision
    names, `module.` prefix; light: layerN, base: stages.N and the 32-32-64 deep stem)."""
    sd = OrderedDict()
    p = 'module.'
    if mrla_type == 'light':
        sd[p + 'conv1.weight'] = torch.randn(64, 3, 7, 7)
        _bn(sd, p + 'bn1.', 64)
    else:
        sd[p + 'conv1.0.weight'] = torch.randn(32, 3, 3, 3)
        _bn(sd, p + 'conv1.1.', 32)
        sd[p + 'conv1.3.weight'] = torch.randn(32, 32, 3, 3)
        _bn(sd, p + 'conv1.4.', 32)
        sd[p + 'conv1.6.weight'] = torch.randn(64, 32, 3, 3)
        _bn(sd, p + 'bn1.', 64)
    inplanes = 64
    sub = 'mla' if old_names else 'mrla'
    for i, (n, k) in enumerate(zip(BLOCKS[depth], K_SIZES)):
        planes = 64 * 2 ** i
        c = planes * 4
        for j in range(n):
            b = f'{p}layer{i + 1}.{j}.' if mrla_type == 'light' else f'{p}stages.{i}.{j}.'
            cin = inplanes if j == 0 else c
            sd[b + 'conv1.weight'] = torch.randn(planes, cin, 1, 1)
            _bn(sd, b + 'bn1.', planes)
            sd[b + 'conv2.weight'] = torch.randn(planes, planes, 3, 3)
            _bn(sd, b + 'bn2.', planes)
            sd[b + 'conv3.weight'] = torch.randn(c, planes, 1, 1)
            _bn(sd, b + 'bn3.', c)
            if j == 0:
                sd[b + 'downsample.0.weight'] = torch.randn(c, inplanes, 1, 1)
                _bn(sd, b + 'downsample.1.', c)
            sd[b + f'mrla.{sub}.Wq.weight'] = torch.randn(1, 1, k)
            sd[b + f'mrla.{sub}.Wk.weight'] = torch.randn(1, 1, k)
            sd[b + f'mrla.{sub}.Wv.weight'] = torch.randn(c, 1, 3, 3)
            if mrla_type == 'light':
                sd[b + 'mrla.lambda_t'] = torch.randn(c, 1, 1)
            _bn(sd, b + 'bn_mrla.', c)
        inplanes = c
    if fc:
        sd[p + 'fc.weight'] = torch.randn(1000, 2048)
        sd[p + 'fc.bias'] = torch.randn(1000)
    return sd


def official_checkpoint(**kwargs):
    return {'state_dict': official_state_dict(**kwargs), 'epoch': 100,
            'best_acc1': torch.tensor(77.75), 'arch': 'resnet50_mrlal',
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': [0, 1]}]}}


def test_light_checkpoint_converts_and_keys_are_ours():
    sd, report = convert_mrla(official_checkpoint())
    assert report['unplaced'] == ['module.fc.bias', 'module.fc.weight']
    assert report['mrla_type'] == 'light' and not report['deep_stem']
    assert report['meta'] == {'epoch': 100, 'best_acc1': 77.75, 'arch': 'resnet50_mrlal'}
    assert 'layer1.0.mrla.mrla.Wq.weight' in sd and 'layer3.5.mrla.lambda_t' in sd
    assert not any(k.startswith('module.') for k in sd)
    assert report['num_converted'] == len(sd)


def test_old_mla_names_and_bare_state_dict():
    sd, report = convert_mrla(official_state_dict(old_names=True, fc=False))
    assert report['unplaced'] == []
    assert 'layer2.3.mrla.mrla.Wv.weight' in sd
    assert not any('.mla.' in k for k in sd)


def test_unknown_keys_are_reported_not_written():
    src = official_state_dict(fc=False)
    src['module.layer1.0.se.fc.0.weight'] = torch.randn(16, 256)
    src['module.layer1.0.eca.conv.weight'] = torch.randn(1, 1, 3)
    sd, report = convert_mrla(src)
    assert report['unplaced'] == ['module.layer1.0.eca.conv.weight',
                                  'module.layer1.0.se.fc.0.weight']
    assert not any('.se.' in k or '.eca.' in k for k in sd)


def test_bad_target():
    with pytest.raises(ValueError, match=r"target='detector' is not one of"):
        convert_mrla({}, target='detector')


def _backbone(**kwargs):
    pytest.importorskip('mmseg')
    from mmattn.models.backbones.mrla_resnet import MRLAResNet
    return MRLAResNet(**kwargs)


@pytest.mark.parametrize('depth', [50, 101])
def test_light_loads_strictly_with_same_values(depth):
    ckpt = official_checkpoint(depth=depth)
    sd, report = convert_mrla(ckpt)
    model = _backbone(depth=depth)
    model.load_state_dict(sd, strict=True)
    ours = model.state_dict()
    src = ckpt['state_dict']
    torch.testing.assert_close(ours['layer3.0.mrla.mrla.Wv.weight'],
                               src['module.layer3.0.mrla.mrla.Wv.weight'])
    torch.testing.assert_close(ours['layer4.2.bn_mrla.running_var'],
                               src['module.layer4.2.bn_mrla.running_var'])


def test_base_deep_stem_loads_strictly():
    sd, report = convert_mrla(official_checkpoint(mrla_type='base'))
    assert report['mrla_type'] == 'base' and report['deep_stem']
    assert 'stem.7.running_mean' in sd and 'layer3.5.mrla.mrla.Wq.weight' in sd
    model = _backbone(depth=50, mrla_type='base', deep_stem=True)
    model.load_state_dict(sd, strict=True)


def test_classifier_target_keys():
    sd, report = convert_mrla(official_checkpoint(), target='classifier')
    assert report['unplaced'] == []
    assert sd['head.fc.weight'].shape == (1000, 2048)
    assert all(k.startswith(('backbone.', 'head.fc.')) for k in sd)
    # the key layout of an mmpretrain ImageClassifier: backbone + neck (no params) + head.fc
    model = torch.nn.Module()
    model.backbone = _backbone(depth=50)
    model.head = torch.nn.Module()
    model.head.fc = torch.nn.Linear(2048, 1000)
    model.load_state_dict(sd, strict=True)


def _cli():
    path = osp.join(ROOT, 'tools', 'model_converters', 'mrla_to_mmattn.py')
    spec = importlib.util.spec_from_file_location('mrla_to_mmattn', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_writes_and_refuses_shape_mismatch(tmp_path, capsys):
    pytest.importorskip('mmseg')
    cli = _cli()
    src = tmp_path / 'official.pth.tar'
    ckpt = official_checkpoint()
    ckpt['state_dict']['module.layer1.0.se.fc.0.weight'] = torch.randn(16, 256)
    torch.save(ckpt, src)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("model = dict(type='MRLAResNet', depth=50)\n")

    dst = tmp_path / 'converted.pth'
    assert cli.main([str(src), str(dst), '--config', str(cfg)]) == 0
    out = capsys.readouterr().out
    assert 'module.layer1.0.se.fc.0.weight' in out and 'module.fc.weight' in out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    model = _backbone(depth=50)
    model.load_state_dict(saved['state_dict'], strict=True)

    # wrong shape: a 5x5 value conv against the config's model
    ckpt['state_dict']['module.layer2.1.mrla.mrla.Wv.weight'] = torch.randn(512, 1, 5, 5)
    torch.save(ckpt, src)
    dst2 = tmp_path / 'refused.pth'
    assert cli.main([str(src), str(dst2), '--config', str(cfg)]) == 1
    assert 'layer2.1.mrla.mrla.Wv.weight' in capsys.readouterr().err
    assert not dst2.exists()


def test_classifier_target_loads_into_mmpretrain_image_classifier():
    import mmattn  # noqa: F401  (compat fixes that let mmpretrain import on CPU torch)
    pytest.importorskip('mmpretrain')
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from mmattn.models.backbones.mrla_resnet import MRLAResNet  # noqa: F401  (registers)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier', backbone=dict(type='MRLAResNet', depth=50),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)))
    sd, _ = convert_mrla(official_checkpoint(), target='classifier')
    model.load_state_dict(sd, strict=True)
