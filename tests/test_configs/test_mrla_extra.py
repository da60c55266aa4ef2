"""What the MRLA configs (configs/mrla/) build, beyond the one-step run of every config.

* The MRLA-light detection backbones add exactly the official extra parameters to the
  baseline configs' backbones (R50 181,420 / 166,316 without ``lambda_t``, R101 390,486 /
  357,974), with the official detection settings (no drop path, frozen_stages=1, norm_eval).
* The ImageNet MRLA configs build an mmpretrain ``ImageClassifier`` whose backbone has drop
  path 0.2 on the MRLA branch and nowhere else; MRLA-base has the official 32-32-64 deep stem.
* The ImageNet schedule is the official one, epoch by epoch.
* What the detection configs' ``init_cfg`` (prefix='backbone.') loads: the checkpoint of our
  ImageNet config and an official checkpoint converted with ``--target classifier``.
"""
import os.path as osp

import pytest
import torch

from conftest import REPO

pytest.importorskip('mmdet')
pytest.importorskip('mmpretrain')

import mmattn  # noqa: E402,F401  (registers MRLAResNet before any config is built)
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402

from mmattn.models.backbones.mrla_resnet import MRLABottleneck, MRLAResNet  # noqa: E402

CFG = osp.join(REPO, 'configs', 'mrla')
# official counts (the MRLA note: computed from the official code); the paper's "0.16M" for
# ResNet-50 is the count without lambda_t (thop does not see a bare nn.Parameter)
EXTRA = {50: (181_420, 166_316), 101: (390_486, 357_974)}
DETECTORS = [(det, depth) for det in ('faster-rcnn', 'mask-rcnn', 'retinanet')
             for depth in (50, 101)] + [('cascade-mask-rcnn', 50)]
IMAGENET_MRLA = [f'mrla-{t}-r{d}_8xb32_in1k.py' for t in ('light', 'base') for d in (50, 101)]


def _cfg(name):
    return Config.fromfile(osp.join(CFG, name))


def _build_backbone(cfg, keep_init_cfg=False):
    init_default_scope(cfg.default_scope)
    backbone_cfg = cfg.model.backbone.copy()
    if not keep_init_cfg:
        backbone_cfg.pop('init_cfg', None)
    return MODELS.build(backbone_cfg)


def _num_params(m):
    return sum(p.numel() for p in m.parameters())


def _lambda_params(m):
    return sum(p.numel() for n, p in m.named_parameters() if n.endswith('lambda_t'))


@pytest.mark.parametrize('det,depth', DETECTORS, ids=[f'{d}-r{n}' for d, n in DETECTORS])
def test_detection_backbone_extra_params_are_official(det, depth):
    base = _build_backbone(_cfg(f'../resnet/{det}_r{depth}_fpn_1x_coco.py'))
    mrla_cfg = _cfg(f'{det}_mrla-light-r{depth}_fpn_1x_coco.py')
    model = _build_backbone(mrla_cfg)
    assert type(model) is MRLAResNet and model.mrla_type == 'light' and model.depth == depth
    extra = _num_params(model) - _num_params(base)
    assert (extra, extra - _lambda_params(model)) == EXTRA[depth]
    # official ResNet_mrlal for mmdet: DropPath commented out, frozen_stages=1, norm_eval=True
    blocks = [m for m in model.modules() if isinstance(m, MRLABottleneck)]
    assert blocks and all(isinstance(b.drop_path, torch.nn.Identity) for b in blocks)
    # lambda_t starts at 0 before the checkpoint overwrites it (README, "Initialisation of
    # lambda_t"): an unloaded backbone with norm_eval must not blow up
    assert model.mrla_cfg == dict(lambda_init='zeros')
    assert all(not b.mrla.lambda_t.any() for b in blocks)
    model.train()
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not any(m.training for m in model.modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    init_cfg = mrla_cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    assert init_cfg.checkpoint == f'checkpoints/mrla-light-r{depth}_in1k.pth'


@pytest.mark.parametrize('name', IMAGENET_MRLA)
def test_imagenet_config_builds_classifier_with_drop_path_on_mrla_branch_only(name):
    from mmcv.cnn.bricks.drop import DropPath
    from mmpretrain.models import ImageClassifier
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    cfg = _cfg(name)
    init_default_scope('mmpretrain')
    model = PRETRAIN_MODELS.build(cfg.model)
    assert isinstance(model, ImageClassifier)
    backbone = model.backbone
    mrla_type = 'base' if 'base' in name else 'light'
    assert type(backbone) is MRLAResNet and backbone.mrla_type == mrla_type
    blocks = [m for m in backbone.modules() if isinstance(m, MRLABottleneck)]
    assert len(blocks) == {50: 16, 101: 33}[backbone.depth]
    for b in blocks:
        assert isinstance(b.drop_path, DropPath) and b.drop_path.drop_prob == pytest.approx(0.2)
    # no other drop path anywhere in the classifier
    drop_paths = [m for m in model.modules() if isinstance(m, DropPath)]
    assert sorted(map(id, drop_paths)) == sorted(id(b.drop_path) for b in blocks)
    # the residual branch is never dropped: with the MRLA branch dropped entirely, a block in
    # training mode returns relu(residual + shortcut) unchanged
    block = backbone.layer1[0]
    block.train()
    x = torch.randn(2, block.conv1.in_channels, 8, 8)
    with torch.no_grad():
        expected, _ = block._residual(x)
        block.drop_path.forward = lambda t: torch.zeros_like(t)
        got = block(x, (), ()) if mrla_type == 'base' else block(x)
        got = got[0] if mrla_type == 'base' else got
    torch.testing.assert_close(got, expected)
    # the official MRLA-base stem: 3x3 convs 3->32 (stride 2), 32->32, 32->64; light: 7x7
    if mrla_type == 'base':
        assert backbone.deep_stem
        convs = [m for m in backbone.stem if isinstance(m, torch.nn.Conv2d)]
        assert [tuple(c.weight.shape) for c in convs] == [(32, 3, 3, 3), (32, 32, 3, 3),
                                                           (64, 32, 3, 3)]
        assert convs[0].stride == (2, 2)
    else:
        assert not backbone.deep_stem and backbone.conv1.kernel_size == (7, 7)


def _official_lr(epoch):
    """resnet/train.py gen_lr with --lr 0.1 --warmup-epochs 3 (--warmup-lr 1e-4)."""
    if epoch < 3:
        return 1e-4 if epoch == 0 else 0.1 * epoch / 3
    return 0.1 * 0.1 ** (epoch // 30)


@pytest.mark.parametrize('name', ['resnet50_8xb32-warmup_in1k.py', 'mrla-light-r101_8xb32_in1k.py',
                                  'mrla-base-r50_8xb32_in1k.py'])
def test_imagenet_schedule_is_official_epoch_by_epoch(name):
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = _cfg(name)
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size * 8 == 256
    opt_cfg = cfg.optim_wrapper.optimizer
    assert (opt_cfg.type, opt_cfg.lr, opt_cfg.momentum, opt_cfg.weight_decay) == \
        ('SGD', 0.1, 0.9, 1e-4)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=opt_cfg.lr)
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        assert s.pop('by_epoch') and not s.get('convert_to_iter_based')
        schedulers.append(PARAM_SCHEDULERS.get(s.pop('type'))(optimizer, **s))
    for epoch in range(100):
        lr = optimizer.param_groups[0]['lr']
        assert lr == pytest.approx(_official_lr(epoch), rel=2e-3), epoch
        optimizer.step()
        for s in schedulers:
            s.step()


@pytest.mark.parametrize('source', ['imagenet_config', 'official_converted'])
def test_detection_init_cfg_loads_imagenet_weights(source, tmp_path):
    """configs/mrla/*_mrla-light-r50_*: init_cfg prefix='backbone.' loads every backbone tensor
    of the file the README says to produce (either way)."""
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    from mmattn.converters.mrla import convert_mrla
    init_default_scope('mmpretrain')
    classifier = PRETRAIN_MODELS.build(_cfg('mrla-light-r50_8xb32_in1k.py').model)
    classifier.init_weights()
    for p in classifier.parameters():  # no tensor left at a constant init value
        p.data.normal_()
    state = classifier.state_dict()
    if source == 'imagenet_config':
        ckpt = dict(state_dict=state, meta=dict())
    else:  # the official layout: module. prefix, torchvision names, fc head
        official = {'module.' + (k[len('backbone.'):] if k.startswith('backbone.') else
                                 k[len('head.'):]): v for k, v in state.items()}
        converted, report = convert_mrla(dict(state_dict=official, epoch=100),
                                         target='classifier')
        assert report['unplaced'] == [] and report['mrla_type'] == 'light'
        ckpt = dict(state_dict=converted)
    path = tmp_path / 'mrla-light-r50_in1k.pth'
    torch.save(ckpt, path)

    cfg = _cfg('faster-rcnn_mrla-light-r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg.checkpoint = str(path)
    backbone = _build_backbone(cfg, keep_init_cfg=True)
    backbone.init_weights()
    loaded = backbone.state_dict()
    expected = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        torch.testing.assert_close(loaded[k], v, msg=k)


def test_extra_cost_tool_counts():
    """mmattn.analysis.mrla_cost (tools/analysis_tools/mrla_extra_cost.py, whose output the
    README quotes): the ledger's counters."""
    from mmattn.analysis import mrla_cost as tool
    light = tool.measure('imagenet', 50, 'light', (64, 64), with_flops=False)
    assert (light['extra'], light['lambda_'], light['extra_without_lambda']) == \
        (181_420, 15_104, 166_316)
    coco = tool.measure('coco', 101, 'light', (64, 64), with_flops=False)
    assert (coco['extra'], coco['extra_without_lambda']) == EXTRA[101]
    base = tool.measure('imagenet', 50, 'base', (64, 64))
    # MRLA modules as light without lambda_t, plus the deep stem (3*32*9 + 32*32*9 + 32*64*9
    # + 2 BN(32) of weight and bias - 64*3*49 of the 7x7 conv)
    assert base['mrla_module_params'] == 166_316
    assert base['extra'] - base['mrla_module_params'] == 864 + 9216 + 18432 + 128 - 9408
    assert base['mrla_module_gmacs'] > 0 and base['extra_gmacs'] > base['mrla_module_gmacs']
    assert base['extra_thop_gflops'] > base['extra_gmacs']  # + BatchNorm and pooling elements
    if 'weighted_value_sum_gmacs' not in base:
        pytest.skip('MRLABase declares its cost (flops) on the ops branch')
    # block t of a stage does t multiply-adds per value element; 64x64 input: 16x16 .. 2x2
    hw = {256: 16 * 16, 512: 8 * 8, 1024: 4 * 4, 2048: 2 * 2}
    blocks = {256: 3, 512: 4, 1024: 6, 2048: 3}
    expected = sum(c * hw[c] * t * (t + 1) // 2 for c, t in blocks.items())
    assert base['weighted_value_sum_gmacs'] == pytest.approx(expected / 1e9)
