"""Official EANet checkpoint -> mmseg/mmattn keys (mmattn/converters/eanet.py and its CLI).

The reference is the official segmentation network written from its code's semantics
(github.com/MenghaoGuo/EANet ``model_torch.py``, /work/shared/notes/external-attention.md):
deep stem 3->64->64->128, dilated stages (layer3 first block dilation 1 then 2; layer4 2, 8,
16), ConvBNReLU 2048->512, the EA unit, ConvBNReLU 512->256, Dropout2d, 1x1 classifier, logits
upsampled with ``align_corners=True``. Random weights (random BN statistics too) are converted
and loaded into the model of the official-layout config; both run in float64 in eval mode.
"""
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmattn.converters.eanet import convert_eanet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/external_attention/'
                  'eanet-official_r101-d8_4xb4-80k_ade20k-512x512.py')


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    return bn


class _Block(nn.Module):

    def __init__(self, cin, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = _bn(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


def _layer(cin, planes, blocks, stride, dilations):
    down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), _bn(planes * 4))
    layers = [_Block(cin, planes, stride, dilations[0], down)]
    layers += [_Block(planes * 4, planes, 1, d, None) for d in dilations[1:]]
    return nn.Sequential(*layers)


class _EAUnit(nn.Module):

    def __init__(self, c, k=64):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1)
        self.linear_0 = nn.Conv1d(c, k, 1, bias=False)
        self.linear_1 = nn.Conv1d(k, c, 1, bias=False)
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), _bn(c))

    def forward(self, x):
        idn = x
        x = self.conv1(x)
        b, c, h, w = x.shape
        attn = F.softmax(self.linear_0(x.view(b, c, h * w)), dim=-1)
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))
        x = self.linear_1(attn).view(b, c, h, w)
        return F.relu(self.conv2(x) + idn)


def _cbr(cin, cout):
    m = nn.Module()
    m.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
    m.bn = _bn(cout)
    m.forward = lambda x: F.relu(m.bn(m.conv(x)))
    return m


class OfficialEANet(nn.Module):
    """The official network (stride 8), ``depth`` 50 or 101."""

    def __init__(self, n_classes=21, depth=50):
        super().__init__()
        blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
        stem = nn.Sequential(nn.Conv2d(3, 64, 3, 2, 1, bias=False), _bn(64), nn.ReLU(),
                             nn.Conv2d(64, 64, 3, 1, 1, bias=False), _bn(64), nn.ReLU(),
                             nn.Conv2d(64, 128, 3, 1, 1, bias=False))
        self.extractor = nn.Sequential(
            stem, _bn(128), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
            _layer(128, 64, blocks[0], 1, [1] * blocks[0]),
            _layer(256, 128, blocks[1], 2, [1] * blocks[1]),
            _layer(512, 256, blocks[2], 1, [1] + [2] * (blocks[2] - 1)),
            _layer(1024, 512, blocks[3], 1, [2, 8, 16]))
        self.fc0 = _cbr(2048, 512)
        self.linu = _EAUnit(512)
        self.fc1 = nn.Sequential(_cbr(512, 256), nn.Dropout2d(0.1))
        self.fc2 = nn.Conv2d(256, n_classes, 1)

    def forward(self, img):
        x = self.fc2(self.fc1(self.linu(self.fc0(self.extractor(img)))))
        return F.interpolate(x, size=img.shape[-2:], mode='bilinear', align_corners=True)


@pytest.fixture(scope='module')
def official():
    torch.manual_seed(0)
    net = OfficialEANet(depth=50).double().eval()
    return net, {'net': net.state_dict(), 'step': 45000}


def _mmseg_model(depth=50, num_classes=21):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm

    from mmattn.apis import build_model_from_cfg
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.update(depth=depth, init_cfg=None)
    cfg.model.decode_head.num_classes = num_classes
    return revert_sync_batchnorm(build_model_from_cfg(cfg))


def test_converted_official_eanet_equals_the_official_network(official):
    net, ckpt = official
    sd, report = convert_eanet(ckpt)
    assert report['unplaced'] == [] and report['num_classes'] == 21
    assert report['meta'] == {'step': 45000}
    model = _mmseg_model().double().eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert unexpected == []
    assert all(k.endswith('num_batches_tracked') for k in missing), missing
    x = torch.randn(1, 3, 41, 41, dtype=torch.float64)
    with torch.no_grad():
        ref = net(x)
        logits = model.encode_decode(x, [dict(img_shape=(41, 41), ori_shape=(41, 41),
                                              pad_shape=(41, 41))])
    assert logits.shape == ref.shape == (1, 21, 41, 41)
    torch.testing.assert_close(logits, ref, rtol=1e-9, atol=1e-9)


def test_backbone_target_fits_the_config_backbone(official):
    _, ckpt = official
    sd, report = convert_eanet(ckpt, target='backbone')
    assert all(not k.startswith(('backbone.', 'decode_head.')) for k in sd)
    assert len(report['unplaced']) == sum(1 for k in ckpt['net']
                                          if not k.startswith('extractor.'))
    backbone = _mmseg_model().backbone
    missing, unexpected = backbone.load_state_dict(sd, strict=False)
    assert unexpected == [] and all(k.endswith('num_batches_tracked') for k in missing)


def _cli():
    spec = importlib.util.spec_from_file_location(
        'eanet_to_mmattn', osp.join(ROOT, 'tools/model_converters/eanet_to_mmattn.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_and_refuses(official, tmp_path, capsys):
    _, ckpt = official
    src, dst = tmp_path / 'eanet.pth', tmp_path / 'out.pth'
    torch.save(ckpt, src)
    cli = _cli()
    assert cli.main([str(src), str(dst)]) == 0
    written = torch.load(dst, map_location='cpu')
    assert written['meta']['converted_by'] == 'eanet_to_mmattn'
    assert 'decode_head.ea.ea.mk.weight' in written['state_dict']
    # an MRLA/torchvision ResNet is not an EANet checkpoint
    torch.save({'conv1.weight': torch.zeros(1)}, src)
    assert cli.main([str(src), str(dst)]) == 1
    assert 'no external-attention tensor' in capsys.readouterr().err
