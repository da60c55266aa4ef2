"""EAHead (mmseg 1.x): structure, forward, loss through BaseDecodeHead, and use in an
EncoderDecoder with the usual auxiliary FCNHead."""
import pytest
import torch

pytest.importorskip('mmseg')

from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from mmattn.models.heads.ea_head import EAHead  # noqa: E402
from mmattn.models.layers.external_attention import ExternalAttentionBlock  # noqa: E402


@pytest.fixture(autouse=True)
def mmseg_scope():
    """The head builds its loss by name: 'CrossEntropyLoss' is mmseg's only in mmseg's scope
    (an earlier test in the same process may have left mmdet's or mmpretrain's as default)."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _samples(batch, size, num_classes):
    out = []
    for _ in range(batch):
        s = SegDataSample()
        label = torch.randint(0, num_classes, (1, size, size))
        label[0, :2] = 255  # some ignored pixels
        s.gt_sem_seg = PixelData(data=label)
        out.append(s)
    return out


def _small_head(**kwargs):
    cfg = dict(in_channels=64, ea_channels=32, channels=16, memory_size=8, num_classes=5,
               dropout_ratio=0.1, norm_cfg=dict(type='BN'), align_corners=False)
    cfg.update(kwargs)
    return EAHead(**cfg)


def test_structure_follows_official():
    head = _small_head()
    assert head.conv_in.conv.kernel_size == (3, 3)
    assert (head.conv_in.conv.in_channels, head.conv_in.conv.out_channels) == (64, 32)
    assert isinstance(head.ea, ExternalAttentionBlock) and head.ea.in_channels == 32
    assert head.ea.ea.memory_size == 8 and isinstance(head.ea.norm, torch.nn.BatchNorm2d)
    assert (head.conv_out.conv.in_channels, head.conv_out.conv.out_channels) == (32, 16)
    assert isinstance(head.dropout, torch.nn.Dropout2d) and head.dropout.p == 0.1
    assert head.conv_seg.in_channels == 16 and head.conv_seg.out_channels == 5


def test_forward_and_loss_by_feat():
    torch.manual_seed(0)
    head = _small_head()
    head.init_weights()
    # init_weights: conv_seg gets BaseDecodeHead's Normal(0.01); the EA memories stay transposed
    torch.testing.assert_close(head.ea.ea.mv.weight, head.ea.ea.mk.weight.permute(1, 0, 2))
    feats = [torch.randn(2, 64, 33, 33)]
    logits = head(feats)
    assert logits.shape == (2, 5, 33, 33)
    losses = head.loss_by_feat(logits, _samples(2, 65, 5))
    assert torch.isfinite(losses['loss_ce']) and losses['loss_ce'] > 0
    losses['loss_ce'].backward()
    assert head.ea.ea.mk.weight.grad is not None
    assert head.conv_in.conv.weight.grad.abs().sum() > 0


def test_multi_level_input_and_errors():
    # resize_concat: the two levels become one map of 8 + 64 channels
    head = EAHead(in_channels=(8, 64), in_index=(0, 1), input_transform='resize_concat',
                  ea_channels=16, channels=8, memory_size=4, num_classes=3,
                  norm_cfg=dict(type='BN'))
    assert head.conv_in.conv.in_channels == 72
    out = head([torch.randn(1, 8, 9, 9), torch.randn(1, 64, 5, 5)])
    assert out.shape == (1, 3, 9, 9)
    with pytest.raises(ValueError, match='ea_channels'):
        _small_head(ea_channels=0)
    with pytest.raises(ValueError, match='one feature map'):
        EAHead(in_channels=(8, 64), in_index=(0, 1), input_transform='multiple_select',
               channels=8, num_classes=3)


def test_official_size_param_count():
    head = EAHead(in_channels=2048, ea_channels=512, channels=256, num_classes=150,
                  norm_cfg=dict(type='BN'))
    expected = (2048 * 512 * 9 + 2 * 512  # conv_in + BN
                + 512 * 512 + 512 + 512 * 64 * 2 + 512 * 512 + 2 * 512  # EA block
                + 512 * 256 * 9 + 2 * 256  # conv_out + BN
                + 256 * 150 + 150)  # classifier
    assert sum(p.numel() for p in head.parameters()) == expected


def test_encoder_decoder_with_auxiliary_fcn_head():
    from mmattn.registry import MODELS
    import mmseg.models  # noqa: F401  registers mmseg's modules
    from mmseg.registry import MODELS as SEG_MODELS

    norm_cfg = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='EncoderDecoder',
        backbone=dict(
            type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg,
            contract_dilation=True),
        decode_head=dict(
            type='EAHead', in_channels=512, in_index=3, ea_channels=32, channels=16,
            memory_size=8, dropout_ratio=0.1, num_classes=4, norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        auxiliary_head=dict(
            type='FCNHead', in_channels=256, in_index=2, channels=16, num_convs=1,
            concat_input=False, dropout_ratio=0.1, num_classes=4, norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    assert SEG_MODELS.get('EAHead') is EAHead and MODELS.get('EAHead') is EAHead
    torch.manual_seed(0)
    model = SEG_MODELS.build(cfg)
    model.init_weights()
    losses = model.loss(torch.randn(2, 3, 64, 64), _samples(2, 64, 4))
    assert set(losses) >= {'decode.loss_ce', 'aux.loss_ce'}
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
