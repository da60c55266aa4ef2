"""MRLAResNet (mmattn/models/backbones/mrla_resnet.py)."""
import pytest
import torch

pytest.importorskip('mmseg')

from mmseg.models.backbones import ResNet  # noqa: E402

from mmattn.models.backbones.mrla_resnet import MRLAResNet  # noqa: E402
from mmattn.models.layers.mrla import MRLABase, MRLALight  # noqa: E402


def _num_params(m):
    return sum(p.numel() for p in m.parameters())


def _lambda_params(m):
    return sum(p.numel() for n, p in m.named_parameters() if n.endswith('lambda_t'))


@pytest.mark.parametrize('depth,with_lambda,without_lambda',
                         [(50, 181_420, 166_316), (101, 390_486, 357_974)])
def test_extra_params_equal_official_counts(depth, with_lambda, without_lambda):
    plain = _num_params(ResNet(depth=depth))
    model = MRLAResNet(depth=depth)
    assert _num_params(model) - plain == with_lambda
    assert _num_params(model) - plain - _lambda_params(model) == without_lambda
    if depth == 50:  # the option that drops lambda gives the thop count as a model
        no_lambda = MRLAResNet(depth=depth, mrla_cfg=dict(use_lambda=False))
        assert _num_params(no_lambda) - plain == without_lambda


def test_official_key_names():
    keys = MRLAResNet(depth=50).state_dict().keys()
    for k in ('layer1.0.mrla.mrla.Wq.weight', 'layer1.0.mrla.mrla.Wk.weight',
              'layer1.0.mrla.mrla.Wv.weight', 'layer1.0.mrla.lambda_t',
              'layer1.0.bn_mrla.weight', 'layer1.0.bn_mrla.running_var',
              'layer4.2.mrla.mrla.Wq.weight', 'conv1.weight', 'bn1.weight',
              'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight'):
        assert k in keys, k
    sd = MRLAResNet(depth=50).state_dict()
    assert sd['layer4.0.mrla.mrla.Wq.weight'].shape == (1, 1, 7)
    assert sd['layer3.0.mrla.mrla.Wk.weight'].shape == (1, 1, 5)
    base = MRLAResNet(depth=50, mrla_type='base').state_dict()
    assert 'layer1.0.mrla.lambda_t' not in base and 'layer1.0.bn_mrla.weight' in base


@pytest.mark.parametrize('kwargs,match', [
    (dict(mrla_type='medium'), r"mrla_type='medium' is not one of \('light', 'base'\)"),
    (dict(depth=34), r'depth=34 is not one of \(50, 101, 152\)'),
    (dict(frozen_stages=5), r'frozen_stages=5 .*\[-1, num_stages=4\]'),
    (dict(frozen_stages=-2), r'frozen_stages=-2'),
    (dict(drop_path_rate=1.0), r'drop_path_rate=1.0'),
    (dict(mrla_cfg=dict(lambda_init='uniform')), r"lambda_init='uniform'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MRLAResNet(**kwargs)


@pytest.mark.parametrize('mrla_type', ['light', 'base'])
@pytest.mark.parametrize('hw', [(65, 47), (33, 33)])
def test_output_shapes_match_plain_resnet_at_odd_sizes(mrla_type, hw):
    x = torch.randn(1, 3, *hw)
    plain = ResNet(depth=50)
    plain.eval()  # mmseg's train() returns None
    model = MRLAResNet(depth=50, mrla_type=mrla_type).eval()
    with torch.no_grad():
        got = [o.shape for o in model(x)]
        want = [o.shape for o in plain(x)]
    assert got == want


def test_out_indices_strides_dilations():
    model = MRLAResNet(depth=50, out_indices=(1, 3), strides=(1, 2, 1, 1),
                       dilations=(1, 1, 2, 4), mrla_type='base').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 512, 8, 8), (1, 2048, 8, 8)]


def test_init_weights_zero_norm3_and_registry():
    from mmattn.registry import MODELS
    model = MODELS.build(dict(type='MRLAResNet', depth=50))
    model.init_weights()
    for block in model.layer2:
        assert torch.all(block.bn3.weight == 0)
        assert torch.all(block.bn_mrla.weight == 1)
    mmdet = pytest.importorskip('mmdet.registry')
    assert isinstance(mmdet.MODELS.build(dict(type='MRLAResNet', depth=50)), MRLAResNet)


@pytest.mark.parametrize('mrla_type', ['light', 'base'])
def test_gradients_reach_mrla_params(mrla_type):
    torch.manual_seed(0)
    model = MRLAResNet(depth=50, mrla_type=mrla_type)
    model.init_weights()
    for m in model.modules():  # zero-init norm3 would leave the blocks' residual silent
        if hasattr(m, 'bn3'):
            torch.nn.init.ones_(m.bn3.weight)
    model.train()
    sum(o.mean() for o in model(torch.randn(2, 3, 48, 48))).backward()
    for name, p in model.named_parameters():
        if '.mrla.' not in name:
            continue
        if mrla_type == 'base' and name.endswith('.0.mrla.mrla.Wq.weight'):
            continue  # softmax over a single block: constant
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('mrla_type', ['light', 'base'])
def test_with_cp_same_output_and_grads(mrla_type):
    torch.manual_seed(0)
    ref = MRLAResNet(depth=50, mrla_type=mrla_type, drop_path_rate=0.2)
    ref.init_weights()
    cp_model = MRLAResNet(depth=50, mrla_type=mrla_type, drop_path_rate=0.2, with_cp=True)
    cp_model.load_state_dict(ref.state_dict())
    ref.train()
    cp_model.train()
    x = torch.randn(2, 3, 48, 48)

    def run(model):
        torch.manual_seed(123)  # the same drop-path masks; checkpoint replays the RNG
        model.zero_grad()
        calls = []
        hook = model.layer3[2].mrla.register_forward_hook(lambda *a: calls.append(1))
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum((o * o).mean() for o in outs).backward()
        hook.remove()
        return [o.detach() for o in outs], xi.grad, {n: p.grad for n, p in
                                                     model.named_parameters()}, len(calls)

    o1, gx1, g1, calls1 = run(ref)
    o2, gx2, g2, calls2 = run(cp_model)
    assert (calls1, calls2) == (1, 2)  # the checkpointed block is recomputed in backward
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(gx1, gx2)
    for n in g1:
        if g1[n] is None:
            assert g2[n] is None, n
        else:
            torch.testing.assert_close(g1[n], g2[n], msg=n)


def test_with_cp_frozen_stem_still_trains_params():
    # the input of layer1 needs no grad when the stem is frozen: the non-reentrant
    # checkpoint must still give layer1 its gradients
    model = MRLAResNet(depth=50, frozen_stages=0, with_cp=True)
    model.train()
    sum(o.mean() for o in model(torch.randn(2, 3, 48, 48))).backward()
    assert model.layer1[0].mrla.lambda_t.grad is not None
    assert model.layer1[0].conv1.weight.grad is not None


@pytest.mark.parametrize('mrla_type', ['light', 'base'])
def test_frozen_stages_freeze_mrla_and_norm_eval(mrla_type):
    model = MRLAResNet(depth=50, mrla_type=mrla_type, frozen_stages=1, norm_eval=True)
    model.train()
    for name, p in model.layer1.named_parameters():
        assert not p.requires_grad, name
    assert any('.mrla.' in n for n, _ in model.layer1.named_parameters())
    assert not model.layer1[0].bn_mrla.training
    assert all(p.requires_grad for p in model.layer2.parameters())
    # norm_eval: bn_mrla of unfrozen stages are in eval too, the rest trains
    assert not model.layer3[0].bn_mrla.training
    assert model.layer3[0].mrla.training
    model = MRLAResNet(depth=50, mrla_type=mrla_type, frozen_stages=4)
    model.train()
    assert not any(p.requires_grad for p in model.parameters())


def test_mrla_module_types_and_record_attention():
    model = MRLAResNet(depth=50, mrla_type='base').eval()
    mods = model.mrla_modules()
    assert len(mods) == 16 and all(isinstance(m, MRLABase) for *_, m in mods)
    model.record_attention(True)
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    for i, j, m in mods:
        assert m.last_attention.shape == (1, m.num_heads, j + 1)
    model.record_attention(False)
    assert all(m.last_attention is None for *_, m in mods)
    light = MRLAResNet(depth=50)
    assert all(isinstance(m, MRLALight) for *_, m in light.mrla_modules())
