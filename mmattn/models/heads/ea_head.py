"""EANet decode head for mmseg 1.x (Guo et al., "Beyond Self-attention: External Attention
using Two Linear Layers for Visual Tasks", Sec. 4.3; official ``model_torch.py``)."""
from typing import List, Optional

from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from mmattn.models.layers.external_attention import ExternalAttentionBlock
from mmattn.registry import MODELS


@MODELS.register_module()
class EAHead(BaseDecodeHead):
    """External-attention decode head (EANet).

    ``ConvModule 3x3 (in_channels -> ea_channels) -> ExternalAttentionBlock(ea_channels)
    -> ConvModule 3x3 (ea_channels -> channels) -> Dropout2d -> 1x1 classifier``,
    which with the defaults of the official model is 2048 -> 512 -> EA(512, S=64) -> 256
    -> Dropout2d(0.1) -> num_classes. The dropout and the classifier are BaseDecodeHead's own
    (``dropout_ratio``, ``conv_seg``), so mmseg's losses, ``loss_by_feat``, ``predict`` and
    the auxiliary ``FCNHead`` of the usual configs work unchanged:

    .. code-block:: python

        decode_head=dict(
            type='EAHead', in_channels=2048, in_index=3, ea_channels=512, channels=256,
            memory_size=64, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))

    Args:
        ea_channels (int): width of the external-attention block (official 512).
            Defaults to 512.
        memory_size (int): S of the external memories. Defaults to 64.
        ea_act_cfg (dict, optional): activation closing the EA residual block. Defaults to
            ``dict(type='ReLU')`` (official).
        kernel_size (int): kernel of the two ConvModules. Defaults to 3 (official).
        **kwargs: BaseDecodeHead arguments. ``in_channels`` is the backbone width (2048 for
            ResNet-50/101), ``channels`` the classifier input (official 256);
            ``conv_cfg``/``norm_cfg``/``act_cfg`` build the ConvModules, and ``norm_cfg`` also
            the EA block's output norm (``None`` there means no norm, a biased conv).
    """

    def __init__(self,
                 ea_channels: int = 512,
                 memory_size: int = 64,
                 ea_act_cfg: Optional[dict] = dict(type='ReLU'),
                 kernel_size: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(self.in_channels, (list, tuple)):
            raise ValueError('EAHead: takes one feature map; use input_transform='
                             "'resize_concat' or a single in_index, got in_channels="
                             f'{self.in_channels}')
        if isinstance(ea_channels, bool) or not isinstance(ea_channels, int) \
                or ea_channels <= 0:
            raise ValueError(f'EAHead: ea_channels={ea_channels!r} must be a positive int')
        if kernel_size % 2 != 1:
            raise ValueError(f'EAHead: kernel_size={kernel_size} must be odd')
        self.ea_channels = ea_channels
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.conv_in = ConvModule(
            self.in_channels, ea_channels, kernel_size, padding=kernel_size // 2, **conv)
        self.ea = ExternalAttentionBlock(
            ea_channels, memory_size=memory_size, norm_cfg=self.norm_cfg, act_cfg=ea_act_cfg)
        self.conv_out = ConvModule(
            ea_channels, self.channels, kernel_size, padding=kernel_size // 2, **conv)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """Features before the classifier, ``(B, channels, H, W)``."""
        x = self._transform_inputs(inputs)
        return self.conv_out(self.ea(self.conv_in(x)))

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.cls_seg(self._forward_feature(inputs))
