"""External Attention (Guo et al., "Beyond Self-attention: External Attention using Two
Linear Layers for Visual Tasks", TPAMI 2022, arXiv:2105.02358).

External attention replaces the N x N affinity of self-attention by the affinity between the N
input features and S learnable memory slots shared by the whole dataset:

    A = Norm(F M_k^T)      (N x S)
    F_out = A M_v          (N x C)

where ``Norm`` is the paper's *double normalisation* (Sec. 3.3, Alg. 1): a softmax over the N
positions (each memory slot's attention is a distribution over the pixels) followed by an l1
normalisation over the S slots (each pixel's weights sum to one). The cost is O(N S C): linear
in the number of positions.

Three modules live here:

- :class:`ExternalAttention`: the bare operator on a ``(B, C, *spatial)`` map (the paper's
  Alg. 1), memories as bias-free ``Conv1d`` like the official ``model_torch.py``.
- :class:`ExternalAttentionBlock`: the official residual unit of EANet (1x1 conv, EA, 1x1 conv +
  norm, add the input, ReLU). Its constructor takes ``in_channels`` so it is also an
  mmcv / mmdet ResNet plugin (``build_plugin_layer(cfg, postfix, in_channels=...)``).
- :class:`MultiHeadExternalAttention`: the multi-head variant of EAMLP (Sec. 3.4, Alg. 2) on
  ``(B, N, C)`` tokens.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model.weight_init import constant_init, kaiming_init, trunc_normal_init
from torch import Tensor

from .attention import outside_autocast
from .base import AttnModule, check_int, check_number, register_operator, to_hw

__all__ = [
    'double_normalization', 'ExternalAttention', 'ExternalAttentionBlock',
    'MultiHeadExternalAttention'
]


def _check_prob(owner: str, name: str, value) -> None:
    check_number(owner, name, value, low=0, high=1, high_open=True)


def double_normalization(logits: Tensor,
                         token_dim: int,
                         memory_dim: int,
                         eps: float = 1e-9) -> Tensor:
    """The paper's double normalisation (Eq. 5-6): softmax over the positions, then l1 over
    the memory slots.

    The softmax runs over ``token_dim`` (the N positions, not the S slots as self-attention
    would): the scale of the input features then cannot blow up one slot's weights. The l1
    step makes the weights of every position sum to one over ``memory_dim``. ``eps`` is the
    official 1e-9 added to the l1 denominator.
    """
    # in at least fp32 (float64 stays): in float16 eps=1e-9 rounds to 0, and a position whose
    # slot weights all underflow would give 0/0; the result goes back to the logits dtype
    attn = logits.softmax(dim=token_dim, dtype=torch.promote_types(logits.dtype, torch.float32))
    return (attn / (eps + attn.sum(dim=memory_dim, keepdim=True))).to(logits.dtype)


@register_operator
class ExternalAttention(AttnModule):
    """External attention on a ``(B, C, *spatial)`` feature map (Alg. 1 of the paper).

    ``M_k`` (``mk``) maps the C channels of each position to S slot logits, ``M_v`` (``mv``)
    maps the S normalised weights back to C channels; both are bias-free 1x1 ``Conv1d`` as in
    the official ``model_torch.py`` (so its checkpoints map one to one: ``linear_0 -> mk``,
    ``linear_1 -> mv``).

    Args:
        channels (int): C, input and output channels.
        memory_size (int): S, the number of memory slots. Defaults to 64 (official).
        attn_drop (float): dropout on the normalised attention map. Defaults to 0 (the
            official segmentation model has none).
        eps (float): added to the l1 denominator. Defaults to 1e-9 (official).
        init_cfg (dict, optional): mmengine init config. If ``None``, the official init is
            used (see :meth:`init_weights`).

    Shape:
        input ``(B, C, *spatial)``, output the same shape. Any number of positions
        ``N = prod(spatial)``; cost O(N S C).

    Attention maps (:func:`~mmattn.models.layers.base.record_attention`): ``probs`` ``(B, S,
    N)``, the double-normalised weights (before dropout): column ``n`` is pixel ``n``'s
    weights over the S memory units (sums to 1), row ``s`` where unit ``s`` is read;
    ``size`` the spatial shape.
    """

    attention_maps = ('probs', )

    def __init__(self,
                 channels: int,
                 memory_size: int = 64,
                 attn_drop: float = 0.,
                 eps: float = 1e-9,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_int('ExternalAttention', 'channels', channels)
        check_int('ExternalAttention', 'memory_size', memory_size)
        _check_prob('ExternalAttention', 'attn_drop', attn_drop)
        self.channels = channels
        self.memory_size = memory_size
        self.eps = eps
        self.mk = nn.Conv1d(channels, memory_size, 1, bias=False)
        self.mv = nn.Conv1d(memory_size, channels, 1, bias=False)
        self.attn_drop = nn.Dropout(attn_drop)
        self._official_init()

    def _official_init(self) -> None:
        # The official code aliases linear_1.weight to a permuted *view* of linear_0.weight and
        # then re-draws both in place with normal(0, sqrt(2 / n)), n = out_channels; the last
        # draw (linear_1, n = C) wins for the shared storage. So at init M_v = M_k^T with std
        # sqrt(2 / C). The alias is broken as soon as the model is moved to the GPU
        # (``Module._apply`` copies each parameter separately), hence the paper's "trained
        # independently": here M_v is a separate copy from the start.
        with torch.no_grad():
            self.mk.weight.normal_(0, math.sqrt(2.0 / self.channels))
            self.mv.weight.copy_(self.mk.weight.permute(1, 0, 2))

    def init_weights(self) -> None:
        """Official init (M_v = M_k^T, std sqrt(2/C)) unless an ``init_cfg`` is given.

        Overriding ``init_weights`` matters inside a backbone: the parent's generic init_cfg
        (e.g. mmdet ResNet's Kaiming for every layer) runs first, then this restores the
        transposed-memory init.
        """
        if self.init_cfg:
            super().init_weights()
        else:
            self._official_init()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3 or x.shape[1] != self.channels:
            raise ValueError(f'ExternalAttention: expected input (B, {self.channels}, '
                             f'*spatial), got {tuple(x.shape)}')
        shape = x.shape
        x = x.flatten(2)  # (B, C, N)
        # slot logits in the weights' precision under autocast: the softmax over positions
        # sharpens with the activations, and half-precision logits then lose the gradient
        attn = outside_autocast(self.mk, x, self.mk.weight.dtype)  # (B, S, N)
        attn = double_normalization(attn, token_dim=2, memory_dim=1, eps=self.eps)
        if self.record_attention:
            self._record(probs=attn, size=tuple(shape[2:]))
        attn = self.attn_drop(attn)
        return self.mv(attn).reshape(shape)  # (B, C, N) -> (B, C, *spatial)

    def flops(self, input_hw) -> int:
        """Multiply-adds on an ``H x W`` map: ``M_k`` and ``M_v``, ``C S`` each per position."""
        h, w = to_hw(input_hw)
        return 2 * self.channels * self.memory_size * h * w

    def extra_repr(self) -> str:
        return f'channels={self.channels}, memory_size={self.memory_size}'


@register_operator
class ExternalAttentionBlock(AttnModule):
    """The official EANet residual unit around :class:`ExternalAttention`.

    ``out = act(x + norm(conv_out(EA(conv_in(x)))))`` with 1x1 convolutions (``conv_in`` with
    bias, ``conv_out`` without, as in the official ``External_attention``). Channels are kept,
    so the block is a drop-in mmcv plugin:

    .. code-block:: python

        # mmdet / mmseg / mmpretrain ResNet: EA after conv3 of every bottleneck of stages 3-4
        plugins=[dict(cfg=dict(type='ExternalAttentionBlock'),
                      stages=(False, False, True, True), position='after_conv3')]

    The ResNet builds it with ``build_plugin_layer(cfg, postfix, in_channels=...)``; its
    submodule name is ``_abbr_ + postfix`` (``ea_block``).

    Note on pretrained backbones: ``after_conv3`` sits before the bottleneck's identity add,
    where the features are not yet rectified; the official trailing ReLU then changes a
    pretrained network's function even with a zero EA branch. ``act_cfg=None`` together with
    ``zero_init=True`` makes the inserted block an exact identity at initialisation.

    Args:
        in_channels (int): C, input and output channels.
        memory_size (int): S of the external memories. Defaults to 64.
        attn_drop (float): dropout on the attention map. Defaults to 0.
        norm_cfg (dict, optional): norm after ``conv_out`` (mmcv ``build_norm_layer``), e.g.
            ``dict(type='SyncBN')``. ``None`` gives ``conv_out`` a bias and no norm. Defaults
            to ``dict(type='BN')``.
        act_cfg (dict, optional): activation after the residual add (mmcv
            ``build_activation_layer``); ``None`` for none. Defaults to ``dict(type='ReLU')``
            (official).
        zero_init (bool): initialise the output norm's weight (or ``conv_out`` when there is
            no norm) to zero so that the EA branch starts at zero. Defaults to False (official:
            norm weight 1).
        init_cfg (dict, optional): mmengine init config; ``None`` for the official init.
    """

    _abbr_ = 'ea_block'

    def __init__(self,
                 in_channels: int,
                 memory_size: int = 64,
                 attn_drop: float = 0.,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 zero_init: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_int('ExternalAttentionBlock', 'in_channels', in_channels)
        if norm_cfg is not None and not isinstance(norm_cfg, dict):
            raise TypeError('ExternalAttentionBlock: norm_cfg must be a dict or None, got '
                            f'{norm_cfg!r}')
        if act_cfg is not None and not isinstance(act_cfg, dict):
            raise TypeError('ExternalAttentionBlock: act_cfg must be a dict or None, got '
                            f'{act_cfg!r}')
        self.in_channels = in_channels
        self.zero_init = zero_init
        self.conv_in = nn.Conv2d(in_channels, in_channels, 1)
        self.ea = ExternalAttention(in_channels, memory_size, attn_drop=attn_drop)
        self.conv_out = nn.Conv2d(in_channels, in_channels, 1, bias=norm_cfg is None)
        if norm_cfg is not None:
            self.norm_name, norm = build_norm_layer(norm_cfg, in_channels)
            self.add_module(self.norm_name, norm)
        else:
            self.norm_name = None
        self.act = build_activation_layer(act_cfg) if act_cfg is not None else nn.Identity()
        self._official_init()

    @property
    def norm(self) -> Optional[nn.Module]:
        return getattr(self, self.norm_name) if self.norm_name else None

    def _official_init(self) -> None:
        # Official: Conv2d ~ normal(0, sqrt(2 / (k*k*out))) (= Kaiming fan_out), BN weight 1,
        # bias 0; conv_in's bias is left at PyTorch's default there, zero here.
        for conv in (self.conv_in, self.conv_out):
            kaiming_init(conv, mode='fan_out', nonlinearity='relu', distribution='normal')
        if self.norm is not None:
            constant_init(self.norm, 0. if self.zero_init else 1., bias=0.)
        elif self.zero_init:
            constant_init(self.conv_out, 0., bias=0.)
        self.ea.init_weights()

    def init_weights(self) -> None:
        if self.init_cfg:
            super().init_weights()
        else:
            self._official_init()

    def flops(self, input_hw) -> int:
        """Multiply-adds on an ``H x W`` map: the two 1x1 convs and the external attention."""
        h, w = to_hw(input_hw)
        return 2 * self.in_channels**2 * h * w + self.ea.flops((h, w))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        # conv_in feeds the slot logits: in the weights' precision under autocast, as EA's mk
        out = outside_autocast(self.conv_in, x, self.conv_in.weight.dtype)
        out = self.ea(out)
        out = self.conv_out(out)
        if self.norm is not None:
            out = self.norm(out)
        return self.act(out + identity)


@register_operator
class MultiHeadExternalAttention(AttnModule):
    """Multi-head external attention of EAMLP (Sec. 3.4, Alg. 2) on ``(B, N, C)`` tokens.

    The tokens are first widened by ``expansion`` (official ``coef = 4``) and split into
    ``num_heads * expansion`` heads of ``C / num_heads`` channels each. Every head attends to
    the *same* memories ``M_k`` (``Linear(head_dims, S)``) and ``M_v``
    (``Linear(S, head_dims)``), both with bias as in the official ``transformer_block.py``;
    the heads are concatenated and projected back to C.

    Args:
        embed_dims (int): C, token channels.
        num_heads (int): heads *before* expansion (the T2T-ViT setting, e.g. 4 for
            T2T-ViT-7); the operator uses ``num_heads * expansion`` heads. Defaults to 8.
        expansion (int): channel expansion of ``expand`` (official ``coef``). Defaults to 4.
        memory_size (int, optional): S. ``None`` keeps the official product
            ``heads-factor x S = 256``, i.e. ``256 // expansion`` (64 for 4). The paper trades
            H against S this way ("multiply H by k while dividing S by k").
        attn_drop (float): dropout on the attention map. Defaults to 0.
        proj_drop (float): dropout after ``proj``. Defaults to 0.
        eps (float): l1 denominator epsilon. Defaults to 1e-9.
        init_cfg (dict, optional): mmengine init config; ``None`` for the official init
            (truncated normal std 0.02 on every Linear, zero biases, as T2T-ViT's
            ``_init_weights`` applies to EAMLP).
    """

    attention_maps = ('probs', )

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 expansion: int = 4,
                 memory_size: Optional[int] = None,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 eps: float = 1e-9,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        owner = 'MultiHeadExternalAttention'
        check_int(owner, 'embed_dims', embed_dims)
        check_int(owner, 'num_heads', num_heads)
        check_int(owner, 'expansion', expansion)
        if embed_dims % num_heads:
            raise ValueError(f'{owner}: num_heads={num_heads} must divide '
                             f'embed_dims={embed_dims}')
        if memory_size is None:
            if 256 % expansion:
                raise ValueError(f'{owner}: memory_size=None needs expansion to divide 256, '
                                 f'got expansion={expansion}; pass memory_size explicitly')
            memory_size = 256 // expansion
        check_int(owner, 'memory_size', memory_size)
        _check_prob(owner, 'attn_drop', attn_drop)
        _check_prob(owner, 'proj_drop', proj_drop)
        self.embed_dims = embed_dims
        self.expansion = expansion
        self.num_heads = num_heads * expansion
        self.head_dims = embed_dims // num_heads
        self.memory_size = memory_size
        self.eps = eps
        hidden = embed_dims * expansion
        self.expand = nn.Linear(embed_dims, hidden)
        self.mk = nn.Linear(self.head_dims, memory_size)
        self.mv = nn.Linear(memory_size, self.head_dims)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(hidden, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self._official_init()

    def _official_init(self) -> None:
        for m in (self.expand, self.mk, self.mv, self.proj):
            trunc_normal_init(m, std=.02, bias=0.)

    def init_weights(self) -> None:
        if self.init_cfg:
            super().init_weights()
        else:
            self._official_init()

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        if C != self.embed_dims:
            raise ValueError(f'MultiHeadExternalAttention: expected (B, N, {self.embed_dims}) '
                             f'tokens, got {tuple(x.shape)}')
        x = self.expand(x).view(B, N, self.num_heads, self.head_dims).transpose(1, 2)
        attn = self.mk(x)  # (B, heads, N, S)
        attn = double_normalization(attn, token_dim=2, memory_dim=3, eps=self.eps)
        if self.record_attention:
            self._record(probs=attn)  # (B, heads, N, S): each token's weights over S
        attn = self.attn_drop(attn)
        x = self.mv(attn).transpose(1, 2).reshape(B, N, -1)  # (B, N, heads * head_dims)
        return self.proj_drop(self.proj(x))

    def flops(self, input_hw) -> int:
        """Multiply-adds for ``H * W`` tokens: expand, the memories of every head, proj."""
        h, w = to_hw(input_hw)
        n, hidden = h * w, self.embed_dims * self.expansion
        return (2 * self.embed_dims * hidden
                + 2 * self.num_heads * self.head_dims * self.memory_size) * n

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads} '
                f'(x{self.expansion} expanded), head_dims={self.head_dims}, '
                f'memory_size={self.memory_size}')
