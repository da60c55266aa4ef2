"""MRLA's layer-attention maps (the paper's Figure 1a), for
tools/analysis_tools/mrla_attention_map.py.

* MRLA-base: for every stage a lower-triangular map; row t is block t's softmax over blocks
  1..t of the stage (each row sums to 1).
* MRLA-light: for every stage the per-head sigmoid gates of each block (blocks x heads).
"""
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch

from mmattn.models.backbones.mrla_resnet import MRLAResNet
from .build import build_model, load_cfg

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
FILENAMES = dict(base='mrla_base_attention.png', light='mrla_light_gates.png')


def build_backbone(config: Optional[str] = None, mrla_type: str = 'base',
                   depth: int = 50) -> MRLAResNet:
    """An MRLAResNet with the official initialisation (maps without a checkpoint): the
    default one of ``depth`` and ``mrla_type``, or the config's ``model.backbone`` (or
    ``model``)."""
    if config is None:
        backbone = MRLAResNet(depth=depth, mrla_type=mrla_type)
    else:
        cfg = load_cfg(config)
        model_cfg = cfg.model.get('backbone', cfg.model) if 'model' in cfg else None
        if model_cfg is None or model_cfg.get('type') not in ('MRLAResNet', MRLAResNet):
            raise ValueError(f'{config}: model.backbone (or model) must be an MRLAResNet, got '
                             f'{None if model_cfg is None else model_cfg.get("type")!r}')
        backbone = build_model(cfg, part='backbone')  # weights come from --checkpoint
    backbone.init_weights()
    return backbone


def load_weights(backbone: MRLAResNet, checkpoint: str) -> None:
    from mmattn.converters.mrla import convert_mrla
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state_dict = ckpt.get('state_dict', ckpt.get('model', ckpt))
    official = any(k.startswith(('module.', 'stages.')) or '.mrla.mla.' in k
                   for k in state_dict)
    if official:
        state_dict, _ = convert_mrla(ckpt, target='backbone')
    else:
        state_dict = {k[len('backbone.'):] if k.startswith('backbone.') else k: v
                      for k, v in state_dict.items()}
    result = backbone.load_state_dict(state_dict, strict=False)
    if result.missing_keys:
        print(f'warning: {len(result.missing_keys)} backbone keys not in {checkpoint}, '
              f'e.g. {result.missing_keys[:3]}')


def load_input(image: Optional[str] = None, img_size: int = 224, seed: int = 0) -> torch.Tensor:
    if image is None:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(1, 3, img_size, img_size, generator=gen)
    from PIL import Image
    img = Image.open(image).convert('RGB').resize((img_size, img_size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


@torch.no_grad()
def collect_scores(backbone: MRLAResNet, inputs: torch.Tensor,
                   head: Optional[int] = None) -> List[np.ndarray]:
    """One array per stage, averaged over the batch (and over heads unless ``head``).

    base: ``(T, T)``, row t = softmax of block t over blocks 0..t, NaN above the diagonal.
    light: ``(T, heads)``, the gates.
    """
    backbone.eval()
    backbone.record_attention(True)
    try:
        backbone(inputs)
        stages: Dict[int, list] = {}
        for i, _, m in backbone.mrla_modules():
            scores = m.last_attention  # base (B, g, t); light (B, g)
            if head is not None:
                if not 0 <= head < scores.shape[1]:
                    raise ValueError(f'--head={head} out of range: stage {i} has '
                                     f'{scores.shape[1]} heads')
                scores = scores[:, head:head + 1]
            stages.setdefault(i, []).append(scores.float().mean(0))
    finally:
        backbone.record_attention(False)
    out = []
    for i in sorted(stages):
        rows = stages[i]
        if backbone.mrla_type == 'light':
            out.append(torch.stack(rows).numpy())
            continue
        T = len(rows)
        mat = np.full((T, T), np.nan, dtype=np.float32)
        for t, r in enumerate(rows):
            mat[t, :t + 1] = r.mean(0).numpy()  # mean over heads keeps the row sum 1
        out.append(mat)
    return out


def plot(scores: List[np.ndarray], mrla_type: str, path: str, title: str = '') -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(scores)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), squeeze=False)
    cmap = plt.get_cmap('viridis').with_extremes(bad='white')
    for i, (ax, s) in enumerate(zip(axes[0], scores)):
        T = s.shape[0]
        if mrla_type == 'base':
            im = ax.imshow(np.ma.masked_invalid(s), cmap=cmap, vmin=0, vmax=1)
            ax.set_xlabel('attended block')
            ax.set_ylabel('query block')
            ax.set_xticks(range(T), [str(t + 1) for t in range(T)], fontsize=6)
        else:
            im = ax.imshow(s, cmap=cmap, vmin=0, vmax=1, aspect='auto',
                           interpolation='nearest')
            ax.set_xlabel(f'head ({s.shape[1]} heads)')
            ax.set_ylabel('block')
        ax.set_yticks(range(T), [str(t + 1) for t in range(T)], fontsize=6)
        ax.set_title(f'stage {i + 1}')
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title or ('MRLA-base layer attention (rows: softmax over earlier blocks)'
                           if mrla_type == 'base' else 'MRLA-light per-head gates'))
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path



def draw_maps(config=None, checkpoint=None, image=None, img_size=224, depth=50,
              mrla_type='both', head=None, seed=0, out_dir='work_dirs/mrla_attention'):
    """Builds the backbone(s), runs the input, writes one PNG per MRLA type; their paths."""
    torch.manual_seed(seed)
    if config:
        backbones = [build_backbone(config)]
    else:
        types = ('base', 'light') if mrla_type == 'both' else (mrla_type, )
        backbones = [build_backbone(None, t, depth) for t in types]
    inputs = load_input(image, img_size, seed)
    written = []
    for backbone in backbones:
        if checkpoint:
            load_weights(backbone, checkpoint)
        scores = collect_scores(backbone, inputs, head)
        written.append(plot(scores, backbone.mrla_type,
                            osp.join(out_dir, FILENAMES[backbone.mrla_type])))
    return written
