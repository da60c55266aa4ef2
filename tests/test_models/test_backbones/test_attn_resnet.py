"""AttnResNet / AttnResNeXt / AttnResNeSt (mmattn/models/backbones/attn_resnet.py) and what
they share with MRLAResNet (resnet_common.py)."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmseg.models.backbones import ResNeSt, ResNet, ResNeXt
from mmseg.models.backbones.resnet import Bottleneck

from mmattn.models.backbones import AttnResNeSt, AttnResNet, AttnResNeXt, MRLAResNet
from mmattn.models.backbones.attn_resnet import WideBottleneck
from mmattn.models.layers import AAConv2d, LALayer, LESA
from mmattn.registry import MODELS

LESA_CFG = dict(type='LESA', max_size=8)
MIXED = (None, dict(type='AAConv2d', max_size=8), LESA_CFG, dict(type='LALayer'))


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope='module')
def mixed():
    """A small ResNet-50 with AA, LESA and LA-layer stages."""
    torch.manual_seed(0)
    return AttnResNet(depth=50, base_channels=16, stage_ops=MIXED)


@pytest.fixture(autouse=True, scope='module')
def quiet_init():
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every tensor at INFO
    yield
    logger.setLevel(level)


def test_explicit_classes_registered_under_the_same_names():
    for cls, base in ((AttnResNet, ResNet), (AttnResNeXt, ResNeXt), (AttnResNeSt, ResNeSt)):
        assert issubclass(cls, base) and cls.__module__ == 'mmattn.models.backbones.attn_resnet'
        assert MODELS.get(cls.__name__) is cls


def test_operators_replace_the_chosen_convs(mixed):
    assert isinstance(mixed.layer2[0].conv2, AAConv2d)
    assert isinstance(mixed.layer3[5].conv2, LESA) and isinstance(mixed.layer4[2].conv2, LALayer)
    assert type(mixed.layer1[0].conv2).__name__ == 'Conv2d'
    # LESA ends with its own norm: bn2 is gone there only
    assert type(mixed.layer3[0].bn2).__name__ == 'Identity'
    assert type(mixed.layer2[0].bn2).__name__ == 'BatchNorm2d'


def test_eval_and_train_return_the_model(mixed):
    assert mixed.eval() is mixed and not mixed.training
    assert mixed.train() is mixed and mixed.training
    mrla = MRLAResNet(depth=50)
    assert mrla.eval() is mrla and mrla.train() is mrla


@pytest.mark.parametrize('training', [True, False])
def test_empty_batch_gives_empty_outputs(mixed, training):
    ref = ResNet(depth=50, base_channels=16)
    ref.train(training)  # mmseg's train() returns None
    mixed.train(training)
    x = torch.randn(0, 3, 40, 56)
    outs, refs = mixed(x), ref(x)
    assert [o.shape for o in outs] == [r.shape for r in refs]
    assert refs[-1].shape == (0, 512, 2, 2)


@pytest.mark.parametrize('mrla_type', ['light', 'base'])
def test_empty_batch_through_mrla(mrla_type):
    net = MRLAResNet(depth=50, mrla_type=mrla_type, base_channels=16)
    outs = net(torch.randn(0, 3, 40, 56))
    assert [tuple(o.shape) for o in outs] == [(0, 64, 10, 14), (0, 128, 5, 7), (0, 256, 3, 4),
                                              (0, 512, 2, 2)]


def test_wide_resnet_is_a_declared_block_class():
    wrn = AttnResNet(depth=50, base_channels=128, expansion=2)
    assert all(type(b) is WideBottleneck for b in wrn.layer1) and WideBottleneck.expansion == 2
    assert 'arch_settings' not in wrn.__dict__
    # torchvision wide_resnet50_2 without its fc (68,883,240 - 2048 * 1000 - 1000)
    assert n_params(wrn) == 66_834_240
    # the plain class table is untouched by a wide instance
    assert AttnResNet(depth=50).layer1[0].__class__ is Bottleneck
    with pytest.raises(ValueError, match=r'expansion=3 is not one of \(4, 2\)'):
        AttnResNet(depth=50, expansion=3)


def test_wide_resnet_zero_inits_the_last_norm():
    wrn = AttnResNet(depth=50, base_channels=16, expansion=2)
    wrn.init_weights()
    assert wrn.layer2[1].bn3.weight.abs().sum() == 0


@pytest.mark.parametrize('norm_cfg,cls', [(dict(type='GN', num_groups=32), 'GroupNorm'),
                                          (dict(type='SyncBN'), 'SyncBatchNorm')])
def test_operators_take_the_backbone_norm(norm_cfg, cls):
    net = AttnResNet(depth=50, base_channels=32, norm_cfg=norm_cfg,
                     stage_ops=(None, None, LESA_CFG, None))
    op = net.layer3[1].conv2
    assert {type(m).__name__ for m in (op.bn_qkv, op.bn_similarity, op.bn_output, op.bn_x)} \
        == {cls}
    # the operator's own norm_cfg wins
    own = AttnResNet(depth=50, base_channels=32, norm_cfg=norm_cfg,
                     stage_ops=(None, None, dict(LESA_CFG, norm_cfg=dict(type='BN')), None))
    assert type(own.layer3[1].conv2.bn_qkv).__name__ == 'BatchNorm2d'
    if cls == 'GroupNorm':  # runs, with as many groups as divide the logit norm's channels
        assert op.bn_qkv.num_groups == 32 and op.bn_similarity.num_groups == 16
        assert net.eval()(torch.randn(1, 3, 32, 32))[-1].shape == (1, 1024, 1, 1)


@pytest.mark.parametrize('depth', [18, 50])
def test_zero_init_residual_with_an_operator_ending_in_its_own_norm(depth):
    """R18's BasicBlock ends with norm2, which LESA replaces: the zero init moves to the
    norms ending LESA, so the block starts as relu(identity)."""
    net = AttnResNet(depth=depth, base_channels=16, zero_init_residual=True,
                     stage_ops=(None, None, LESA_CFG, None))
    net.init_weights()
    block = net.layer3[1].eval()
    x = torch.randn(2, block.conv1.in_channels, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_bfloat16_model_runs_lesa_explicit_and_classification():
    for pe in ('detection_qr', 'classification'):
        op = MODELS.build(dict(type='LESA', in_channels=32, out_channels=32, pe_type=pe,
                               max_size=6, attn_impl='explicit')).to(torch.bfloat16)
        ref = op.float()(x := torch.randn(2, 32, 6, 6))
        out = op.to(torch.bfloat16)(x.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), ref, rtol=0.1, atol=0.1)


def test_meta_device_backbone():
    with torch.device('meta'):
        net = AttnResNet(depth=50, stage_ops=MIXED)
    outs = net(torch.empty(1, 3, 64, 64, device='meta'))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048] and outs[0].is_meta


def test_stage_ops_type_may_be_the_class(mixed):
    net = AttnResNet(depth=50, base_channels=16, stage_ops=(None, None, dict(type=LESA), None))
    assert isinstance(net.layer3[0].conv2, LESA)


def test_mrla_resnet_shares_the_checks():
    with pytest.raises(TypeError, match=r"unknown argument\(s\) 'deepth'.*did you mean "
                                        r"'depth'.*accepted: .*mrla_type"):
        MRLAResNet(deepth=50)
    with pytest.raises(ValueError, match=r'strides=\(1, 2\); accepted one int per stage'):
        MRLAResNet(strides=(1, 2))
