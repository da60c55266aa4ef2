"""Unary / binary weight shares of LESA's dynamic fusion (the "Weights" column of LESA Table 2).

    python tools/analysis_tools/lesa_weight_shares.py
        [--config configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py] [--checkpoint CKPT]
        [--images IMG ... | --random N] [--size H [W]] [--out-dir DIR]

LESA's output is ``gate * binary + unary`` with ``gate = sigmoid(projection(reasoning([unary,
binary])))`` (LESA Eq. 5 and 7; the paper's omega). The paper's Table 2 reports, for each term,
``1 / (1 + omega)`` (unary) and ``omega / (1 + omega)`` (binary), "averaged across the spatial
locations, feature channels, and layers". A forward hook on every dynamic LESA module's
``projection`` (its output is the gate's logit) records ``omega``; the tool prints the shares
per layer (mean over images, channels and positions) and overall (mean of the layers, as the
paper), and draws the channel-mean gate of the first image, one panel per layer, as
``DIR/lesa_gate.png`` (matplotlib, Agg backend).

Only the backbone runs (every LESA is in it). Images are resized to ``--size`` (default 224,
the ImageNet test size; a detection config works at any size) and normalised with the
config's ``data_preprocessor`` mean/std (ImageNet's when it has none). ``--checkpoint`` is an
mmattn checkpoint (an official one converted by tools/model_converters/lesa_to_mmattn.py).
On random weights (no ``--checkpoint``) the numbers mean nothing: they only show the tool runs.
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'lesa', 'lesa-r50_4xb32-cos-90e_in1k.py')
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='a config with LESA modules')
    parser.add_argument('--checkpoint', help='mmattn checkpoint (default: random weights)')
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--images', nargs='+', help='image files')
    src.add_argument('--random', type=int, default=None, metavar='N',
                     help='N random images (default when no --images: 2)')
    parser.add_argument('--size', type=int, nargs='+', default=[224],
                        help='input size H [W] (default 224)')
    parser.add_argument('--out-dir', default='work_dirs/lesa_weight_shares',
                        help='where the heat map goes')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def build_backbone(config: str, checkpoint: Optional[str] = None):
    """The config's backbone (its whole model when it has none), in eval mode, and the
    normalisation (mean, std) of its data preprocessor."""
    from mmengine.config import Config

    from mmattn.apis import build_model_from_cfg
    cfg = Config.fromfile(config)
    model_cfg = cfg.model
    pre = model_cfg.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    mean, std = pre.get('mean', IMAGENET_MEAN), pre.get('std', IMAGENET_STD)
    model_cfg.pop('init_cfg', None)
    if 'backbone' in model_cfg:
        model_cfg.backbone.pop('init_cfg', None)
    model = build_model_from_cfg(cfg)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu')
    # a detector / classifier runs its backbone; a bare backbone config runs itself
    backbone = model.backbone if isinstance(getattr(model, 'backbone', None), torch.nn.Module) \
        else model
    backbone.eval()  # mmseg's ResNet.train() returns None: do not chain
    return backbone, (tuple(mean), tuple(std))


def load_inputs(args, mean, std) -> torch.Tensor:
    size = tuple(args.size) * 2 if len(args.size) == 1 else tuple(args.size[:2])
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    if args.images:
        import mmcv
        imgs = []
        for path in args.images:
            img = mmcv.imread(path, channel_order='rgb')
            if img is None:
                raise FileNotFoundError(path)
            img = mmcv.imresize(img, (size[1], size[0]))
            imgs.append(torch.from_numpy(img).permute(2, 0, 1).float())
        return (torch.stack(imgs) - mean_t) / std_t
    gen = torch.Generator().manual_seed(args.seed)
    n = 2 if args.random is None else args.random
    imgs = torch.rand(n, 3, *size, generator=gen) * 255
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


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    backbone, (mean, std) = build_backbone(args.config, args.checkpoint)
    inputs = load_inputs(args, mean, std)
    per_layer, overall, gates = weight_shares(backbone, inputs)
    if not args.checkpoint:
        print('random weights (no --checkpoint): these numbers mean nothing')
    print(f'{"layer":<24} {"gate shape":>16} {"unary %":>8} {"binary %":>9}')
    for name, v in per_layer.items():
        print(f'{name:<24} {str(v["shape"]):>16} {100 * v["unary"]:8.2f} '
              f'{100 * v["binary"]:9.2f}')
    print(f'{"overall (mean of layers)":<41} {100 * overall["unary"]:8.2f} '
          f'{100 * overall["binary"]:9.2f}')
    png = draw_gates(gates, osp.join(args.out_dir, 'lesa_gate.png'),
                     title=f'{osp.basename(args.config)}: gate of image 0'
                     + ('' if args.checkpoint else ' (random weights)'))
    print(f'heat map: {png}')
    return dict(per_layer=per_layer, overall=overall, png=png)


if __name__ == '__main__':
    main()
    sys.exit(0)
