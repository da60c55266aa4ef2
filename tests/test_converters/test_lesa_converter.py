"""Official LESA checkpoint -> mmattn keys (mmattn/converters/lesa.py and its CLI).

The official state dicts are synthesised from our own models renamed back to the official
layout (the LESA submodule names and shapes are the official ones: shared/notes/lesa.md):
classification ``{'net': {'module.<torchvision key>': ...}, 'epoch'}``, detection mmdet 2.x
``{'state_dict': {'backbone.*', 'neck.*', 'rpn_head.*', 'roi_head.*'}, 'meta', 'optimizer'}``.
"""
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch

import mmattn  # noqa: F401  (registers AttnResNet/LESA; compat fixes for mmpretrain)
from mmattn.converters.lesa import convert_lesa

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CFG = osp.join(ROOT, 'configs', 'lesa', 'lesa-r50_4xb32-cos-90e_in1k.py')
DET_CFG = osp.join(ROOT, 'configs', 'lesa', 'mask-rcnn_lesa-r50_fpn_1x_coco.py')


def _build(config, part=None):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model if part is None else cfg.model[part]
    model_cfg.pop('init_cfg', None)
    return MODELS.build(model_cfg)


@pytest.fixture(scope='module')
def classifier():
    pytest.importorskip('mmpretrain')
    return _build(CLS_CFG)


@pytest.fixture(scope='module')
def det_backbone():
    pytest.importorskip('mmdet')
    return _build(DET_CFG, 'backbone')


def _randomised(sd):
    gen = torch.Generator().manual_seed(0)
    return OrderedDict((k, torch.randn(v.shape, generator=gen).to(v.dtype)
                        if v.is_floating_point() else v.clone()) for k, v in sd.items())


def official_classification(classifier):
    """``{'net', 'epoch'}`` with ``module.`` + torchvision names (``fc.*``)."""
    net = OrderedDict()
    for k, v in _randomised(classifier.state_dict()).items():
        if k.startswith('backbone.'):
            net['module.' + k[len('backbone.'):]] = v
        elif k.startswith('head.fc.'):
            net['module.' + k[len('head.'):]] = v
        else:
            raise AssertionError(k)
    return {'net': net, 'epoch': 89}


def official_detection(backbone):
    sd = OrderedDict(('backbone.' + k, v) for k, v in _randomised(backbone.state_dict()).items())
    sd['neck.lateral_convs.0.conv.weight'] = torch.randn(256, 256, 1, 1)
    sd['rpn_head.rpn_conv.weight'] = torch.randn(256, 256, 3, 3)
    sd['roi_head.bbox_head.fc_cls.weight'] = torch.randn(81, 1024)
    sd['roi_head.mask_head.conv_logits.weight'] = torch.randn(80, 256, 1, 1)
    return {'state_dict': sd, 'meta': {'epoch': 12, 'mmdet_version': '2.11.0'},
            'optimizer': {'state': {}, 'param_groups': []}}


def test_classification_to_classifier_loads_strictly(classifier):
    ckpt = official_classification(classifier)
    sd, report = convert_lesa(ckpt, target='classifier')
    assert report['unplaced'] == [] and report['format'] == 'classification'
    assert report['pe_type'] == 'classification' and report['num_lesa'] == 8
    assert report['meta'] == {'epoch': 89}
    assert 'backbone.layer3.1.conv2.qkv_transform.weight' in sd
    assert sd['head.fc.weight'].shape == (1000, 2048)
    classifier.load_state_dict(sd, strict=True)
    ours = classifier.state_dict()
    torch.testing.assert_close(ours['backbone.layer4.2.conv2.relative'],
                               ckpt['net']['module.layer4.2.conv2.relative'])
    torch.testing.assert_close(ours['head.fc.bias'], ckpt['net']['module.fc.bias'])


def test_classification_to_backbone_drops_fc(classifier):
    sd, report = convert_lesa(official_classification(classifier), target='backbone')
    assert report['unplaced'] == ['module.fc.bias', 'module.fc.weight']
    assert not any(k.startswith(('module.', 'backbone.', 'fc.')) for k in sd)
    classifier.backbone.load_state_dict(sd, strict=True)


def test_classification_to_detection_backbone_drop_position(classifier, det_backbone):
    sd, report = convert_lesa(official_classification(classifier), target='backbone',
                              drop_position=True)
    # 8 LESA blocks x (relative + 2 norms x 5 tensors)
    assert len(report['dropped_position']) == 8 * 11
    assert not any(k.endswith('.relative') or '.bn_similarity.' in k for k in sd)
    missing, unexpected = det_backbone.load_state_dict(sd, strict=False)
    assert unexpected == []
    # only the detection position layers start fresh
    assert missing and all(k.rsplit('.', 2)[-1] in ('rel_height', 'rel_width') or
                           '.bn_similarity.' in k or '.bn_output.' in k for k in missing)


def test_detection_checkpoint(det_backbone):
    ckpt = official_detection(det_backbone)
    sd, report = convert_lesa(ckpt, target='backbone')
    assert report['format'] == 'detection' and report['pe_type'] == 'detection_qr'
    assert report['meta'] == {'epoch': 12, 'mmdet_version': '2.11.0'}
    assert sorted(report['unplaced']) == sorted(
        k for k in ckpt['state_dict'] if not k.startswith('backbone.'))
    det_backbone.load_state_dict(sd, strict=True)
    torch.testing.assert_close(det_backbone.state_dict()['layer4.0.conv2.rel_height'],
                               ckpt['state_dict']['backbone.layer4.0.conv2.rel_height'])

    full, report = convert_lesa(ckpt, target='detector')
    assert report['unplaced'] == []
    assert set(full) == set(ckpt['state_dict'])


@pytest.mark.parametrize('bad', [
    {'state_dict': {'module.layer1.0.mrla.mrla.Wq.weight': torch.randn(1, 1, 5),
                    'module.conv1.weight': torch.randn(64, 3, 7, 7)}, 'epoch': 100},
    {'foo': torch.randn(3), 'bar': torch.randn(2, 2)},
])
def test_wrong_kind_is_refused(bad):
    with pytest.raises(ValueError, match='no LESA tensor'):
        convert_lesa(bad)


def test_wrong_target_for_format():
    ckpt = {'net': {'module.layer3.1.conv2.qkv_transform.weight': torch.randn(512, 256, 1)}}
    with pytest.raises(ValueError, match='classification checkpoint has no detector'):
        convert_lesa(ckpt, target='detector')
    det = {'state_dict': {'backbone.layer3.1.conv2.qkv_transform.weight': torch.randn(1)}}
    with pytest.raises(ValueError, match='no ImageNet classifier'):
        convert_lesa(det, target='classifier')
    with pytest.raises(ValueError, match="target='x' is not one of"):
        convert_lesa(ckpt, target='x')
    with pytest.raises(ValueError, match='not a state dict'):
        convert_lesa({'layer3.1.conv2.qkv_transform.weight': 'text'})


def _cli():
    path = osp.join(ROOT, 'tools', 'model_converters', 'lesa_to_mmattn.py')
    spec = importlib.util.spec_from_file_location('lesa_to_mmattn', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_writes_and_refuses(tmp_path, capsys, classifier):
    cli = _cli()
    ckpt = official_classification(classifier)
    ckpt['net']['module.layer3.1.conv2.extra_thing'] = torch.randn(3)
    src = tmp_path / 'official.pth'
    torch.save(ckpt, src)
    dst = tmp_path / 'converted.pth'
    assert cli.main([str(src), str(dst), '--target', 'classifier', '--config', CLS_CFG]) == 0
    out = capsys.readouterr().out
    assert 'module.layer3.1.conv2.extra_thing' in out and 'not in the' not in out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    classifier.load_state_dict(saved['state_dict'], strict=True)

    # a table for another size (the 14x14 model's is (2 * 16 + 32, 2 * 196 - 1) = (64, 391))
    ckpt['net']['module.layer3.2.conv2.relative'] = torch.randn(64, 127)
    torch.save(ckpt, src)
    dst2 = tmp_path / 'refused.pth'
    assert cli.main([str(src), str(dst2), '--target', 'classifier', '--config', CLS_CFG]) == 1
    err = capsys.readouterr().err
    assert 'backbone.layer3.2.conv2.relative: checkpoint (64, 127), model (64, 391)' in err
    assert not dst2.exists()

    torch.save({'foo': torch.randn(2)}, src)
    assert cli.main([str(src), str(tmp_path / 'x.pth')]) == 1
    assert 'no LESA tensor' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()
