"""What an attention operator attends to, drawn on the image (issue 18), for
tools/analysis_tools/attention_map.py.

The maps come from the operators themselves (:func:`mmattn.models.layers.base.record_attention`;
what each records is in ``docs/dev/operator_contract.md``); this module only loads the image,
runs the model and draws:

- LESA / SA / AA (``probs`` over all keys): one heat map per head for the query, upsampled onto
  the image; LESA adds its unary share ``|u| / (|u| + |g b|)`` per pixel and the gate;
- LA-layer (``points``, ``probs`` over k*k keys): the deformed sampling points of the query per
  head, sized and coloured by weight, inside the constraint region (a square);
- MRLA (block-level ``probs`` over the earlier blocks of the stage, or MRLA-light's ``gate``
  per head): bar plots; the query point plays no part (one score per block and image);
- External Attention (``probs`` over S memory units per pixel): the query's strongest units
  (bars), the strongest unit of every pixel, and where the query's top unit is read.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ['load_image', 'toy_image', 'to_input', 'run_and_record', 'draw_record',
           'recording_layers', 'input_stats', 'query_index']

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


# ---------------------------------------------------------------------------- input
def toy_image(seed: int = 0, size: int = 224) -> np.ndarray:
    """A generated scene (shapes on a background, :mod:`mmattn.datasets.toy`), RGB uint8."""
    from mmattn.datasets.toy import _draw_scene
    canvas, _, _ = _draw_scene(np.random.RandomState(seed), size, size, 3)
    return np.asarray(canvas.convert('RGB'))


def load_image(spec: str, size: int = 224) -> np.ndarray:
    """``(size, size, 3)`` RGB uint8 from a file, or ``'toy'`` / ``'toy:SEED'`` for a scene."""
    from PIL import Image
    if spec == 'toy' or spec.startswith('toy:'):
        seed = spec.partition(':')[2]
        if seed and not seed.isdigit():
            raise ValueError(f"IMAGE={spec!r}: a toy image is 'toy' or 'toy:SEED' (SEED an int)")
        return toy_image(int(seed or 0), size)
    try:
        img = Image.open(spec).convert('RGB')
    except (FileNotFoundError, OSError) as e:
        raise ValueError(f'IMAGE={spec!r} cannot be read as an image ({e})') from None
    return np.asarray(img.resize((size, size), Image.BILINEAR))


def input_stats(cfg) -> Tuple[Tuple[float, ...], Tuple[float, ...], bool]:
    """``(mean, std, rgb)`` of the config's data preprocessor (ImageNet RGB when it has none)."""
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    rgb = bool(pre.get('bgr_to_rgb', pre.get('to_rgb', True)))
    return (tuple(pre.get('mean', IMAGENET_MEAN)), tuple(pre.get('std', IMAGENET_STD)), rgb)


def to_input(img: np.ndarray, mean: Sequence[float], std: Sequence[float], rgb: bool = True):
    """The ``(1, 3, H, W)`` float tensor the model sees: the preprocessor's normalisation."""
    import torch
    x = torch.tensor(np.ascontiguousarray(img if rgb else img[..., ::-1]), dtype=torch.float32)
    x = (x - torch.tensor(mean)) / torch.tensor(std)
    return x.permute(2, 0, 1)[None].contiguous()


# ---------------------------------------------------------------------------- recording
def recording_layers(model) -> Dict[str, str]:
    """Qualified name -> class name of every attention module that records maps."""
    from mmattn.models.layers.base import attention_modules
    return {n: type(m).__name__ for n, m in attention_modules(model).items()
            if m.attention_maps}


def run_and_record(model, x, layer: str) -> dict:
    """Run ``model`` (its backbone when ``layer`` is under ``backbone.``) on ``x`` and return
    the record of ``layer``."""
    import torch
    from mmattn.models.layers.base import record_attention
    layers = recording_layers(model)
    if layer not in layers:
        some = ', '.join(list(layers)[:6]) + (', ...' if len(layers) > 6 else '')
        raise ValueError(f'--layer {layer!r} is not an attention layer of the model '
                         f'(accepted: {some or "none"}; --list-layers lists them all)')
    backbone = getattr(model, 'backbone', None)
    with torch.no_grad(), record_attention(model, [layer]) as maps:
        if layer.startswith('backbone.') and backbone is not None:
            backbone(x)
        elif model is backbone or not hasattr(model, 'data_preprocessor'):
            model(x)
        else:
            model(x, mode='tensor')
    if layer not in maps:
        raise ValueError(f'--layer {layer!r} did not run in this forward pass')
    return maps[layer]


def query_index(query_yx: Tuple[int, int], image_hw: Tuple[int, int],
                grid_hw: Tuple[int, int]) -> Tuple[int, int]:
    """The cell of an ``grid_hw`` feature map that covers image pixel ``query_yx``."""
    (y, x), (H, W), (h, w) = query_yx, image_hw, grid_hw
    return min(h - 1, int(y * h / H)), min(w - 1, int(x * w / W))


# ---------------------------------------------------------------------------- drawing
def _grid(n: int, extra: int = 0, cols: int = 5):
    import matplotlib.pyplot as plt
    total = n + 1 + extra  # the image with the query first
    cols = min(cols, total)
    rows = math.ceil(total / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows + 0.4), squeeze=False)
    axes = axes.ravel()
    for ax in axes[total:]:
        ax.axis('off')
    return fig, axes[:total]


def _show(ax, img, title, query_yx=None):
    ax.imshow(img)
    if query_yx is not None:
        ax.plot(query_yx[1], query_yx[0], marker='x', color='red', markersize=9, mew=2.5)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _overlay(ax, img, heat, title, query_yx, cmap='inferno'):
    # each cell covers the image pixels it was computed from (nearest: no invented detail)
    H, W = img.shape[:2]
    _show(ax, img, title, query_yx)
    ax.imshow(heat, cmap=cmap, alpha=0.6, extent=(-0.5, W - 0.5, H - 0.5, -0.5),
              interpolation='nearest')


def _global(record, img, query_yx, kind):
    probs = record['probs'][0].float().numpy()                 # (heads, L, L)
    h, w = record['size']
    qy, qx = query_index(query_yx, img.shape[:2], (h, w))
    row = probs[:, qy * w + qx].reshape(-1, h, w)
    panels = [(f'head {i}: max {r.max():.2f}', r) for i, r in enumerate(row)]
    if 'unary' in record:
        u = record['unary'][0].abs()
        b = record['binary'][0].abs()
        if 'gate' in record:
            b = b * record['gate'][0]
            gate = record['gate'][0].mean(0).numpy()
        share = (u / (u + b + 1e-12)).mean(0).numpy()
        panels.append((f'unary share (mean {share.mean():.2f})', share))
        if 'gate' in record:
            panels.append((f'gate omega (mean {gate.mean():.2f})', gate))
    fig, axes = _grid(len(panels))
    _show(axes[0], img, f'query (y={query_yx[0]}, x={query_yx[1]}) -> cell ({qy}, {qx}) of '
          f'{h}x{w}', query_yx)
    for ax, (title, heat) in zip(axes[1:], panels):
        _overlay(ax, img, heat, title, query_yx,
                 cmap='viridis' if title.startswith(('unary', 'gate')) else 'inferno')
    return fig


def _local(record, img, query_yx):
    import matplotlib.patches as patches
    probs = record['probs'][0].float().numpy()                 # (m, kk, h, w)
    points = record['points'][0].float().numpy()               # (2, kk, h, w)
    h, w = record['size']
    H, W = img.shape[:2]
    qy, qx = query_index(query_yx, (H, W), (h, w))
    sy, sx = H / h, W / w                                      # image pixels per cell
    px = (qx + points[0, :, qy, qx] + 0.5) * sx - 0.5
    py = (qy + points[1, :, qy, qx] + 0.5) * sy - 0.5
    region = record['region'] + 0.5
    fig, axes = _grid(probs.shape[0])
    _show(axes[0], img, f'query (y={query_yx[0]}, x={query_yx[1]}), region {2 * region:g} '
          'cells', query_yx)
    for i, ax in enumerate(axes[1:]):
        a = probs[i, :, qy, qx]
        _show(ax, img, f'head {i}: max weight {a.max():.2f}', query_yx)
        ax.add_patch(patches.Rectangle(((qx - region + 0.5) * sx - 0.5,
                                        (qy - region + 0.5) * sy - 0.5),
                                       2 * region * sx, 2 * region * sy, fill=False,
                                       edgecolor='white', linestyle='--', linewidth=1))
        ax.scatter(px, py, s=20 + 300 * a, c=a, cmap='autumn', vmin=0, vmax=max(a.max(), 1e-6),
                   edgecolors='black', linewidths=0.5)
        # points and region past the border (they read zeros there) must not rescale the axes
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
    return fig


def _layer(record, img, layer):
    import matplotlib.pyplot as plt
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(8, 3.2))
    _show(ax0, img, 'input (MRLA scores are per image: no query)')
    if 'probs' in record:
        p = record['probs'][0].float().numpy()                 # (heads, t)
        t = p.shape[-1]
        mean = p.mean(0)
        ax1.bar(range(1, t + 1), mean, color='tab:blue', label='mean over heads')
        ax1.plot(np.repeat(np.arange(1, t + 1)[None], len(p), 0).T, p.T, '.', color='grey',
                 alpha=0.4, markersize=3)
        ax1.set_xlabel(f'block of the stage (1..{t}; {t} = this block)')
        ax1.set_ylabel('layer attention (sums to 1)')
        ax1.set_xticks(range(1, t + 1))
    else:
        g = record['gate'][0].float().numpy()                  # (heads, )
        ax1.bar(range(len(g)), g, color='tab:blue')
        ax1.set_xlabel('head')
        ax1.set_ylabel('MRLA-light gate (sigmoid)')
        ax1.set_ylim(0, 1)
    ax1.set_title(layer, fontsize=8)
    return fig


def _memory(record, img, query_yx, top: int = 8):
    import matplotlib.pyplot as plt
    probs = record['probs'][0].float().numpy()                 # (S, N)
    h, w = record['size']
    qy, qx = query_index(query_yx, img.shape[:2], (h, w))
    a = probs[:, qy * w + qx]
    order = np.argsort(a)[::-1][:top]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    _show(axes[0], img, f'query (y={query_yx[0]}, x={query_yx[1]})', query_yx)
    axes[1].bar(range(len(order)), a[order], color='tab:blue')
    axes[1].set_xticks(range(len(order)), [str(s) for s in order], fontsize=7)
    axes[1].set_xlabel(f'memory unit (top {len(order)} of {len(a)})')
    axes[1].set_ylabel("query's weight (all S sum to 1)")
    strongest = probs.argmax(0).reshape(h, w)
    _overlay(axes[2], img, strongest, 'strongest unit per pixel', query_yx, cmap='tab20')
    _overlay(axes[3], img, probs[order[0]].reshape(h, w),
             f"where unit {order[0]} (query's top) is read", query_yx)
    return fig


def draw_record(record: dict, img: np.ndarray, query_yx: Tuple[int, int], layer: str,
                kind: str, title: str, out: Optional[str] = None, dpi: int = 64):
    """The figure of one layer's record on ``img`` (RGB uint8); saved as PNG to ``out``.

    ``kind``: the class name of the layer (picks the drawing)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if 'points' in record:
        fig = _local(record, img, query_yx)
    elif kind.startswith('MRLA'):
        fig = _layer(record, img, layer)
    elif kind.endswith('ExternalAttention') and record['probs'].dim() == 3:
        fig = _memory(record, img, query_yx)
    elif 'probs' in record and record['probs'].dim() == 4 and 'size' in record:
        fig = _global(record, img, query_yx, kind)
    else:
        raise ValueError(f'{layer} ({kind}): no drawing for a record with '
                         f'{sorted(record)}')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if out:
        import io

        from PIL import Image
        buf = io.BytesIO()
        fig.savefig(buf, format='png', dpi=dpi)
        # a 256-colour palette: a third of the bytes, no visible change for heat maps
        Image.open(buf).convert('RGB').quantize(256).save(out, optimize=True)
    plt.close(fig)
    return out
