"""Unary / binary weight shares of LESA's dynamic fusion (the "Weights" column of LESA Table 2),
for tools/analysis_tools/lesa_weight_shares.py.

LESA's output is ``gate * binary + unary`` with ``gate = sigmoid(projection(reasoning([unary,
binary])))`` (LESA Eq. 5 and 7; the paper's omega). The paper reports, for each term,
``1 / (1 + omega)`` (unary) and ``omega / (1 + omega)`` (binary), "averaged across the spatial
locations, feature channels, and layers". A forward hook on every dynamic LESA module's
``projection`` (its output is the gate's logit) records ``omega``.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Optional

import torch

from .build import build_model, load_cfg

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def build_backbone(config: str, checkpoint: Optional[str] = None):
    """The config's backbone (its whole model when it has none), in eval mode, and the
    normalisation (mean, std) of its data preprocessor."""
    cfg = load_cfg(config)
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    mean, std = pre.get('mean', IMAGENET_MEAN), pre.get('std', IMAGENET_STD)
    model = build_model(cfg)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu')
    # a detector / classifier runs its backbone; a bare backbone config runs itself
    backbone = model.backbone if isinstance(getattr(model, 'backbone', None), torch.nn.Module) \
        else model
    backbone.eval()  # mmseg's ResNet.train() returns None: do not chain
    return backbone, (tuple(mean), tuple(std))


def load_inputs(mean, std, images=None, random=None, size=(224, ), seed=0) -> torch.Tensor:
    """``images`` resized to ``size`` (H [W]), or ``random`` (default 2) seeded random
    images, normalised."""
    size = tuple(size) * 2 if len(size) == 1 else tuple(size[:2])
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    if images:
        import mmcv
        imgs = []
        for path in images:
            img = mmcv.imread(path, channel_order='rgb')
            if img is None:
                raise FileNotFoundError(path)
            img = mmcv.imresize(img, (size[1], size[0]))
            imgs.append(torch.from_numpy(img).permute(2, 0, 1).float())
        return (torch.stack(imgs) - mean_t) / std_t
    gen = torch.Generator().manual_seed(seed)
    imgs = torch.rand(2 if random is None else random, 3, *size, generator=gen) * 255
    return (imgs - mean_t) / std_t


def lesa_modules(model) -> 'OrderedDict':
    from mmattn.models.layers.lesa import LESA
    return OrderedDict((name, m) for name, m in model.named_modules()
                       if isinstance(m, LESA) and m.fusion == 'dynamic')


@torch.no_grad()
def weight_shares(backbone, inputs: torch.Tensor):
    """``(per_layer, overall, gates)``: per layer name ``dict(unary, binary, shape)`` (shares
    in [0, 1]), the mean over layers, and each layer's gate ``(N, C, H, W)``."""
    modules = lesa_modules(backbone)
    if not modules:
        raise ValueError('no LESA module with fusion=dynamic in this model: the weight shares '
                         'are those of the dynamic fusion gate')
    gates = OrderedDict()
    handles = []
    for name, module in modules.items():
        def hook(_mod, _inp, out, name=name):
            gates[name] = torch.sigmoid(out).float()
        handles.append(module.projection.register_forward_hook(hook))
    try:
        backbone(inputs)
    finally:
        for handle in handles:
            handle.remove()
    per_layer = OrderedDict()
    for name, w in gates.items():
        per_layer[name] = dict(unary=(1 / (1 + w)).mean().item(),
                               binary=(w / (1 + w)).mean().item(), shape=tuple(w.shape[1:]))
    overall = dict(unary=sum(v['unary'] for v in per_layer.values()) / len(per_layer),
                   binary=sum(v['binary'] for v in per_layer.values()) / len(per_layer))
    return per_layer, overall, gates


def draw_gates(gates, path: str, index: int = 0, title: str = '') -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(gates)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, name in zip(axes.flat, names):
        gate = gates[name][index].mean(0).numpy()     # channel-mean omega at each position
        im = ax.imshow(gate, cmap='viridis', vmin=0, vmax=1)
        ax.set_title(f'{name}\nmean omega {gate.mean():.3f}', fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label='gate omega (binary weight)')
    if title:
        fig.suptitle(title, fontsize=9)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path



def measure(config, checkpoint=None, images=None, random=None, size=(224, ), seed=0,
            out_dir='work_dirs/lesa_weight_shares'):
    """``dict(per_layer, overall, png)``: the shares and the heat map of image 0's gates."""
    torch.manual_seed(seed)
    backbone, (mean, std) = build_backbone(config, checkpoint)
    inputs = load_inputs(mean, std, images, random, size, seed)
    per_layer, overall, gates = weight_shares(backbone, inputs)
    png = draw_gates(gates, osp.join(out_dir, 'lesa_gate.png'),
                     title=f'{osp.basename(config)}: gate of image 0'
                     + ('' if checkpoint else ' (random weights)'))
    return dict(per_layer=per_layer, overall=overall, png=png)
