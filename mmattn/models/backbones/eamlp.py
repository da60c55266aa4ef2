"""EAMLP: the T2T-ViT layout with external attention in place of self-attention
(Guo et al., "Beyond Self-attention: External Attention using Two Linear Layers for Visual
Tasks", Sec. 3.4 and 4.2; official code ``MenghaoGuo/EANet/EAMLP``, built on T2T-ViT).

Layout of the released EAMLP-7 (``T2t_vit_7`` of the official ``EAMLP/models``, 384 px):

- Tokens-to-token module: soft split (unfold 7x7 / stride 4) -> token layer ->
  soft split (3x3 / 2) -> token layer -> soft split (3x3 / 2) -> ``Linear(64*9, 256)``.
  The official "performer" token layers of T2T-ViT are replaced by *single-head external
  attention* layers (``token_performer.py``): ``q = Linear(in, 64)``, memories
  ``Linear(64, 128, bias=False)`` / ``Linear(128, 64)``, double normalisation, ``proj``,
  the skip taken from ``q`` (the token width changes), then an MLP of ratio 1. Dropout 0.1 on
  the attention map and after ``proj`` as in the official layer.
- cls token + fixed sinusoidal position table (not trained), 7 pre-norm blocks of
  ``MultiHeadExternalAttention`` (embed 256, 4 heads x expansion 4 = 16 heads of 64 channels,
  S = 64) and an MLP of ratio 2, final LayerNorm; the classifier reads the cls token.

Divergences from the official code (all behaviour-neutral at the released setting):

- Input sizes other than ``img_size`` work: the position table is bicubically resized like
  mmpretrain's T2T-ViT (the official code only runs at its training size).
- Non-square inputs work: the token grid is tracked from the unfold arithmetic instead of
  ``sqrt(N)``.
- The official token layers initialise ``M_v`` as ``M_k^T``, but T2T-ViT's
  ``apply(_init_weights)`` then redraws every Linear with truncated normal std 0.02; we
  implement that effective init directly.
- The multi-head memories (``mk``, ``mv``) and ``expand`` are named by the paper instead of
  ``linear_0``, ``linear_1``, ``trans_dims``; a checkpoint converter maps them.
"""
from copy import deepcopy
from typing import Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import constant_init, trunc_normal_, trunc_normal_init
from torch import Tensor

from mmattn.models.layers.external_attention import (MultiHeadExternalAttention,
                                                      double_normalization)
from mmattn.registry import MODELS

__all__ = ['EAMLP', 'eamlp_7']


def sinusoid_position_table(num_positions: int, dims: int) -> Tensor:
    """The 1-D sinusoidal table of "Attention is all you need" (fixed in T2T-ViT / EAMLP),
    shape ``(1, num_positions, dims)``."""
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    rate = np.power(10000.0, 2 * (np.arange(dims) // 2) / dims)[None, :]
    table = pos / rate
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.from_numpy(table).float().unsqueeze(0)


def resize_pos_embed(pos_embed: Tensor, src_hw: Sequence[int], dst_hw: Sequence[int],
                     mode: str = 'bicubic', num_extra_tokens: int = 1) -> Tensor:
    """Resize the grid part of a ``(1, extra + H*W, C)`` table from ``src_hw`` to ``dst_hw``;
    the extra (cls) rows are kept."""
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    c = grid.shape[-1]
    grid = grid.reshape(1, src_hw[0], src_hw[1], c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(dst_hw), mode=mode, align_corners=False)
    return torch.cat([extra, grid.flatten(2).transpose(1, 2)], dim=1)


def _unfold_out(unfold: nn.Unfold, hw: Tuple[int, int]) -> Tuple[int, int]:
    k, s, p = unfold.kernel_size, unfold.stride, unfold.padding
    k, s, p = (k, k) if isinstance(k, int) else k, (s, s) if isinstance(s, int) else s, \
        (p, p) if isinstance(p, int) else p
    return tuple((hw[i] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2))


class Mlp(BaseModule):
    """Two Linear layers with GELU and dropout (timm's ``Mlp``)."""

    def __init__(self, in_dims: int, hidden_dims: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(in_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, in_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class EATokenLayer(BaseModule):
    """A tokens-to-token re-structuring layer of EAMLP: single-head external attention that
    also changes the token width from ``in_dims`` (unfolded patches) to ``embed_dims``.

    ``y = q + proj(EA(q))`` with ``q = Linear(LN(x))``, then ``y + MLP(LN(y))`` (ratio 1).
    ``M_k`` has no bias, ``M_v`` has one, as in the official ``token_performer.py``.
    """

    def __init__(self,
                 in_dims: int,
                 embed_dims: int = 64,
                 memory_size: int = 128,
                 attn_drop: float = 0.1,
                 proj_drop: float = 0.1,
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.norm1 = build_norm_layer(norm_cfg, in_dims)[1]
        self.q = nn.Linear(in_dims, embed_dims)
        self.mk = nn.Linear(embed_dims, memory_size, bias=False)
        self.mv = nn.Linear(memory_size, embed_dims)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        q = self.q(self.norm1(x))  # (B, N, embed_dims)
        attn = double_normalization(self.mk(q), token_dim=1, memory_dim=2)
        x = q + self.proj_drop(self.proj(self.mv(self.attn_drop(attn))))
        return x + self.mlp(self.norm2(x))


class EAT2TModule(BaseModule):
    """Tokens-to-token module of EAMLP (three soft splits, two :class:`EATokenLayer`)."""

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 256,
                 token_dims: int = 64,
                 memory_size: int = 128,
                 attn_drop: float = 0.1,
                 proj_drop: float = 0.1,
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.soft_split0 = nn.Unfold(kernel_size=7, stride=4, padding=2)
        self.soft_split1 = nn.Unfold(kernel_size=3, stride=2, padding=1)
        self.soft_split2 = nn.Unfold(kernel_size=3, stride=2, padding=1)
        layer = dict(embed_dims=token_dims, memory_size=memory_size, attn_drop=attn_drop,
                     proj_drop=proj_drop, norm_cfg=norm_cfg)
        self.attention1 = EATokenLayer(in_channels * 7 * 7, **layer)
        self.attention2 = EATokenLayer(token_dims * 3 * 3, **layer)
        self.project = nn.Linear(token_dims * 3 * 3, embed_dims)

    def out_size(self, hw: Sequence[int]) -> Tuple[int, int]:
        for split in (self.soft_split0, self.soft_split1, self.soft_split2):
            hw = _unfold_out(split, hw)
        return tuple(hw)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        hw = _unfold_out(self.soft_split0, x.shape[-2:])
        x = self.soft_split0(x).transpose(1, 2)
        for step in (1, 2):
            x = getattr(self, f'attention{step}')(x)  # (B, h*w, token_dims)
            x = x.transpose(1, 2).reshape(x.shape[0], -1, *hw)
            split = getattr(self, f'soft_split{step}')
            hw = _unfold_out(split, hw)
            x = split(x).transpose(1, 2)
        return self.project(x), hw


class EAMLPBlock(BaseModule):
    """Pre-norm transformer block whose attention is :class:`MultiHeadExternalAttention`."""

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float,
                 expansion: int = 4,
                 memory_size=None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = MultiHeadExternalAttention(
            embed_dims,
            num_heads=num_heads,
            expansion=expansion,
            memory_size=memory_size,
            attn_drop=attn_drop_rate,
            proj_drop=drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop=drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@MODELS.register_module()
class EAMLP(BaseModule):
    """EAMLP backbone (external-attention T2T-ViT) for mmpretrain's ``ImageClassifier``.

    Returns a tuple with one entry per ``out_indices`` like mmpretrain's ViT-family backbones;
    with the default ``out_type='cls_token'`` each entry is ``(B, embed_dims)``, ready for
    ``LinearClsHead(in_channels=embed_dims)`` (the official classifier is a Linear on the cls
    token after the final LayerNorm).

    Args:
        arch (str | dict): a key of :attr:`arch_zoo` (the T2T-ViT family layouts; only ``'7'``
            was trained in the paper: 71.66% top-1 at 384 px, per the official repository's
            ``summary.csv``) or a dict with ``embed_dims``, ``num_layers``, ``num_heads``,
            ``mlp_ratio``. Defaults to ``'7'``.
        img_size (int | tuple): the training size; sets the position table (other sizes are
            served by resizing it). Defaults to 384 (the released EAMLP-7).
        in_channels (int): image channels. Defaults to 3.
        token_dims (int): token width inside the T2T module. Defaults to 64.
        t2t_memory_size (int): S of the T2T token layers. Defaults to 128 (official).
        t2t_drop_rate (float): attention-map and projection dropout of the T2T token layers.
            Defaults to 0.1 (official, hard-coded there).
        expansion (int): channel expansion of the multi-head EA (official 4).
        memory_size (int, optional): S of the multi-head EA; ``None`` = ``256 // expansion``.
        out_indices (int | Sequence[int]): blocks whose output is returned. Defaults to -1.
        drop_rate (float): dropout after the position table, in the MLPs and after the EA
            projection. Defaults to 0.
        attn_drop_rate (float): dropout on the multi-head attention maps. Defaults to 0.
        drop_path_rate (float): stochastic depth, linearly increasing over the blocks
            (official training: 0.1). Defaults to 0.
        norm_cfg (dict): norm of the blocks. Defaults to ``dict(type='LN')``.
        final_norm (bool): LayerNorm after the last block. Defaults to True.
        with_cls_token (bool): prepend a cls token. Defaults to True.
        out_type (str): ``'cls_token'`` (B, C), ``'avg_featmap'`` mean of the patch tokens
            (B, C), ``'featmap'`` (B, C, H, W) or ``'raw'`` (B, N(+1), C). Defaults to
            ``'cls_token'``.
        interpolate_mode (str): how the position table is resized. Defaults to 'bicubic'.
        init_cfg (dict | list, optional): mmengine init config; ``None`` for the official
            init (truncated normal std 0.02 on every Linear and the cls token, LN 1 / 0).
    """
    arch_zoo = {
        # the T2T-ViT family of the official code (embed, depth, heads, mlp ratio)
        '7': dict(embed_dims=256, num_layers=7, num_heads=4, mlp_ratio=2.),
        '10': dict(embed_dims=256, num_layers=10, num_heads=4, mlp_ratio=2.),
        '12': dict(embed_dims=256, num_layers=12, num_heads=4, mlp_ratio=2.),
        '14': dict(embed_dims=384, num_layers=14, num_heads=6, mlp_ratio=3.),
        '19': dict(embed_dims=448, num_layers=19, num_heads=7, mlp_ratio=3.),
        '24': dict(embed_dims=512, num_layers=24, num_heads=8, mlp_ratio=3.),
    }
    OUT_TYPES = ('raw', 'cls_token', 'featmap', 'avg_featmap')
    num_extra_tokens = 1

    def __init__(self,
                 arch: Union[str, dict] = '7',
                 img_size: Union[int, Sequence[int]] = 384,
                 in_channels: int = 3,
                 token_dims: int = 64,
                 t2t_memory_size: int = 128,
                 t2t_drop_rate: float = 0.1,
                 expansion: int = 4,
                 memory_size=None,
                 out_indices: Union[int, Sequence[int]] = -1,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN'),
                 final_norm: bool = True,
                 with_cls_token: bool = True,
                 out_type: str = 'cls_token',
                 interpolate_mode: str = 'bicubic',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_zoo:
                raise ValueError(f'EAMLP: arch={arch!r} is not one of '
                                 f'{sorted(self.arch_zoo)} (or pass a dict)')
            arch = self.arch_zoo[arch]
        elif isinstance(arch, dict):
            need = {'embed_dims', 'num_layers', 'num_heads', 'mlp_ratio'}
            if not need <= set(arch):
                raise ValueError(f'EAMLP: an arch dict needs the keys {sorted(need)}, '
                                 f'got {sorted(arch)}')
        else:
            raise TypeError(f'EAMLP: arch must be a str or dict, got {type(arch).__name__}')
        self.arch = deepcopy(arch)
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'EAMLP: out_type={out_type!r} must be one of {self.OUT_TYPES}')
        if out_type == 'cls_token' and not with_cls_token:
            raise ValueError("EAMLP: out_type='cls_token' needs with_cls_token=True")
        self.out_type = out_type
        self.with_cls_token = with_cls_token
        self.interpolate_mode = interpolate_mode

        self.tokens_to_token = EAT2TModule(
            in_channels=in_channels,
            embed_dims=self.embed_dims,
            token_dims=token_dims,
            memory_size=t2t_memory_size,
            attn_drop=t2t_drop_rate,
            proj_drop=t2t_drop_rate,
            norm_cfg=norm_cfg)
        img_hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_resolution = self.tokens_to_token.out_size(img_hw)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]

        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        # fixed table (official: a Parameter with requires_grad=False; a buffer here, the
        # state-dict key `pos_embed` is the same)
        self.register_buffer(
            'pos_embed',
            sinusoid_position_table(num_patches + self.num_extra_tokens, self.embed_dims))
        self._register_load_state_dict_pre_hook(self._resize_loaded_pos_embed)
        self.drop_after_pos = nn.Dropout(drop_rate)

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence):
            raise TypeError(f'EAMLP: out_indices must be an int or a sequence, got '
                            f'{type(out_indices).__name__}')
        self.out_indices = []
        for index in out_indices:
            real = index + self.num_layers if index < 0 else index
            if not 0 <= real < self.num_layers:
                raise ValueError(f'EAMLP: out_indices entry {index} is out of range for '
                                 f'{self.num_layers} layers')
            self.out_indices.append(real)

        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = ModuleList([
            EAMLPBlock(
                self.embed_dims,
                num_heads=arch['num_heads'],
                mlp_ratio=arch['mlp_ratio'],
                expansion=expansion,
                memory_size=memory_size,
                drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate,
                drop_path_rate=float(dpr[i]),
                norm_cfg=norm_cfg) for i in range(self.num_layers)
        ])
        self.final_norm = final_norm
        self.norm = build_norm_layer(norm_cfg, self.embed_dims)[1] if final_norm \
            else nn.Identity()
        self._official_init()

    def _official_init(self) -> None:
        # T2T-ViT's `_init_weights`: every Linear trunc-normal std .02 / bias 0, LN 1 / 0.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=.02, bias=0.)
            elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                constant_init(m, 1., bias=0.)
        trunc_normal_(self.cls_token, std=.02)

    def init_weights(self) -> None:
        if self.init_cfg:
            # e.g. Pretrained: mmengine runs it after the children's own init
            super().init_weights()
        else:
            self._official_init()

    def _resize_loaded_pos_embed(self, state_dict, prefix, *args, **kwargs):
        name = prefix + 'pos_embed'
        if name not in state_dict or state_dict[name].shape == self.pos_embed.shape:
            return
        n = state_dict[name].shape[1] - self.num_extra_tokens
        side = int(round(n**0.5))
        if side * side != n:
            return  # leave the mismatch for load_state_dict to report
        state_dict[name] = resize_pos_embed(state_dict[name], (side, side),
                                            self.patch_resolution, self.interpolate_mode,
                                            self.num_extra_tokens)

    def _format_output(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch = x[:, self.num_extra_tokens:] if self.with_cls_token else x
        if self.out_type == 'featmap':
            return patch.reshape(x.shape[0], *hw, -1).permute(0, 3, 1, 2)
        return patch.mean(dim=1)  # 'avg_featmap'

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        B = x.shape[0]
        x, hw = self.tokens_to_token(x)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw,
                                 self.interpolate_mode, self.num_extra_tokens)
        x = self.drop_after_pos(x)
        if not self.with_cls_token:
            x = x[:, self.num_extra_tokens:]
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.num_layers - 1 and self.final_norm:
                x = self.norm(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw))
        return tuple(outs)


def eamlp_7(**kwargs) -> EAMLP:
    """EAMLP-7: the released model (T2T-ViT-7 layout, 384 px)."""
    return EAMLP(arch='7', **kwargs)
