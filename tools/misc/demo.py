"""`make demo`: train Mask R-CNN with an attention backbone on generated shapes, evaluate, draw.

Steps: generate the COCO-format toy set (classes differ by shape, colours random), load a real
config from configs/, point it at the toy data (data root, image size, schedule: see
mmattn/testing/toy_cfg.py), train from scratch on the CPU, evaluate COCO bbox and segm mAP on
the generated val split, draw predictions on val images into a PNG, print the metrics.

From-scratch recipe (no pretrained weights can be downloaded here; a documented departure from
the config, which assumes an ImageNet-pretrained backbone and SGD): BatchNorm trains
(norm_eval=False, nothing frozen), AdamW (lr 2e-4, weight decay 0.05, gradient norm clipped at
10) with a linear warm-up and a x0.1 step for the last 20% of the iterations. Measured on the
generated shapes: SGD at lr 0.01 or 0.02 from random weights had learnt nothing after 200
iterations (bbox mAP <= 0.001), AdamW 2e-4 reached 0.12 at 200 and 0.33 after 500 iterations
with the step, AdamW 4e-4 0.20. Per image the R-CNN head samples 128 RoIs (the config: 512)
from 300 proposals (the config: 1000 for training and testing): a 128 px image holds 1-3
objects, and the smaller numbers halve the head's share of an iteration.

Data: a plain dark-grey background (the tests' sets draw a random one per image) and shapes of
random colours; the classes still differ by shape only.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
# torch and the OpenMMLab libraries are imported after the arguments are parsed (fast --help)

DEFAULT_CONFIG = 'configs/lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py'
FALLBACK_CONFIG = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=None,
                   help=f'default: {DEFAULT_CONFIG} (stock {FALLBACK_CONFIG} if absent)')
    p.add_argument('--data', default='data/toy/coco')
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--iters', type=int, default=400)
    p.add_argument('--img-size', type=int, default=128, help='short side at toy scale')
    p.add_argument('--num-train', type=int, default=200)
    p.add_argument('--num-val', type=int, default=24)
    p.add_argument('--lr', type=float, default=2e-4, help='AdamW learning rate')
    p.add_argument('--warmup', type=int, default=50)
    p.add_argument('--rcnn-rois', type=int, default=128,
                   help='RoIs the R-CNN head samples per image (config: 512)')
    p.add_argument('--proposals', type=int, default=300,
                   help='RPN proposals per image, training and testing (config: 1000)')
    p.add_argument('--background', default='40,40,40',
                   help="generated images' background: an R,G,B colour or 'random'")
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--min-map', type=float, default=0.5,
                   help='exit 1 if bbox or segm mAP is below this')
    p.add_argument('--verbose', action='store_true',
                   help="mmengine's log (config, environment, losses every 20 iterations); "
                   'without it only warnings, and the progress lines of the demo')
    return p.parse_args(argv)


def demo_cfg(args):
    from mmengine.config import Config

    from mmattn.testing import make_toy_cfg
    config = args.config or (DEFAULT_CONFIG if osp.exists(DEFAULT_CONFIG) else FALLBACK_CONFIG)
    if '::' in config:  # a library's shipped config, e.g. mmdet::mask_rcnn/...
        cfg = Config.fromstring(f"_base_ = '{config}'", file_format='.py')
    else:
        cfg = Config.fromfile(config)
    cfg = make_toy_cfg(cfg, args.data, toy_size=args.img_size, max_iters=args.iters,
                       batch_size=args.batch_size, lr=args.lr, val=False)
    # From scratch: every norm trains, nothing frozen.
    cfg.model.backbone.norm_eval = False
    cfg.model.backbone.frozen_stages = -1
    cfg.optim_wrapper.optimizer = dict(type='AdamW', lr=args.lr, weight_decay=0.05)
    cfg.model.train_cfg.rcnn.sampler.num = args.rcnn_rois
    cfg.model.train_cfg.rpn_proposal.max_per_img = args.proposals
    cfg.model.test_cfg.rpn.max_per_img = args.proposals
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=args.warmup),
        dict(type='MultiStepLR', by_epoch=False, begin=0, end=args.iters,
             milestones=[int(args.iters * 0.8)], gamma=0.1),
    ]
    cfg.optim_wrapper.clip_grad = dict(max_norm=10, norm_type=2)
    cfg.default_hooks.logger.interval = 20
    cfg.log_level = 'INFO' if args.verbose else 'WARNING'
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook')
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = args.work_dir
    return cfg, config


# The picture's colour per class (RGB); README.md, 'Two commands', says what they mean.
SHAPE_COLOURS = {'circle': (255, 140, 0), 'square': (30, 144, 255), 'triangle': (50, 205, 50)}
# a prediction of one of the 77 COCO classes that the generated set never uses
OTHER, OTHER_COLOUR = 'other', (255, 0, 255)
TILE = 256  # pixels per image in the picture (the images are 96-160 px)


def _numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else x


def _overlap(a, b):
    """Intersection of boxes a and b over the area of the smaller one."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0) * max(h, 0) / max(smaller, 1e-6)


def predictions_to_draw(pred, score_thr=0.5, overlap_thr=0.3):
    """What the picture shows of one image's ``pred_instances``: the predictions scoring above
    ``score_thr``, named by shape, best first, one per object. The generated objects' discs
    never overlap (their bounding boxes share under 0.15 of the smaller one), so a box sharing
    more than ``overlap_thr`` of its or a better-scoring box's area is a second guess on the
    same object (mmdet's NMS is per class, and an undertrained model leaves boxes of one class
    that overlap by less than its IoU threshold): it is not drawn."""
    from mmattn.datasets.toy import coco_label_shapes
    shapes = coco_label_shapes()
    scores, labels = _numpy(pred.scores), _numpy(pred.labels)
    boxes = _numpy(pred.bboxes)
    masks = _numpy(pred.masks) if 'masks' in pred else None
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if scores[i] > score_thr and all(_overlap(boxes[i], boxes[k]) <= overlap_thr for k in keep):
            keep.append(i)
    return [dict(name=shapes.get(int(labels[i]), OTHER), score=float(scores[i]),
                 bbox=boxes[i].astype(float), mask=None if masks is None else masks[i] > 0)
            for i in keep]


def draw_tile(vis, img, drawn, size=TILE):
    """``img`` (RGB) scaled to fit a size x size tile with its aspect ratio (a circle stays
    round), centred on light grey, and ``drawn`` (:func:`predictions_to_draw`) on it: mask and
    box in the class colour, the label "shape score" inside the box's top-left corner."""
    import mmcv
    import numpy as np
    h, w = img.shape[:2]
    s = size / max(h, w)
    nh, nw = round(h * s), round(w * s)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    tile = np.full((size, size, 3), 200, np.uint8)
    tile[y0:y0 + nh, x0:x0 + nw] = mmcv.imresize(img, (nw, nh))
    vis.set_image(tile)
    if not drawn:
        return vis.get_image()
    colours = [SHAPE_COLOURS.get(d['name'], OTHER_COLOUR) for d in drawn]
    if drawn[0]['mask'] is not None:
        masks = np.zeros((len(drawn), size, size), bool)
        for k, d in enumerate(drawn):
            masks[k, y0:y0 + nh, x0:x0 + nw] = mmcv.imresize(
                d['mask'].astype(np.uint8), (nw, nh), interpolation='nearest') > 0
        vis.draw_binary_masks(masks, colors=colours, alphas=0.45)
    boxes = np.stack([d['bbox'] for d in drawn]) * s + [x0, y0, x0, y0]
    vis.draw_bboxes(boxes, edge_colors=colours, line_widths=2)
    # inside the box, kept inside the tile when a box touches its right or bottom edge
    positions = np.minimum(boxes[:, :2] + 3, [size - 84, size - 16])
    vis.draw_texts([f"{d['name']} {d['score']:.2f}" for d in drawn], positions,
                   font_sizes=9, colors='white', bboxes=[_label_box(c) for c in colours])
    return vis.get_image()


def _label_box(colour):
    return dict(facecolor=tuple(c / 255 for c in colour), alpha=0.85, pad=1.5, edgecolor='none')


def draw_legend(vis, width, score_thr, height=24):
    """A strip under the tiles: each class's colour and what the labels are."""
    import numpy as np
    vis.set_image(np.full((height, width, 3), 255, np.uint8))
    names = list(SHAPE_COLOURS) + [OTHER]
    colours = list(SHAPE_COLOURS.values()) + [OTHER_COLOUR]
    x = 8 + 80 * np.arange(len(names))
    vis.draw_texts(names, np.stack([x, np.full(len(names), 5)], axis=1), font_sizes=9,
                   colors='white', bboxes=[_label_box(c) for c in colours])
    vis.draw_texts(f'label: predicted shape and score (> {score_thr}), one per object; '
                   'other: a COCO class the generated set does not use',
                   np.array([8 + 80 * len(names), 5]), font_sizes=8, colors='black')
    return vis.get_image()


def draw_predictions(runner, data_root, out_png, n=8, score_thr=0.5):
    """Predictions (score > score_thr) of the trained model on the first n val images, in a
    grid of 4 tiles per row."""
    import mmcv
    import numpy as np
    from mmdet.apis import inference_detector
    from mmengine.visualization import Visualizer
    model = runner.model
    model.eval()
    model.cfg = runner.cfg
    with open(osp.join(data_root, 'annotations', 'instances_val2017.json')) as f:
        images = json.load(f)['images'][:n]
    vis = Visualizer(name='demo_predictions')
    tiles = []
    for im in images:
        img = mmcv.imread(osp.join(data_root, 'val2017', im['file_name']), channel_order='rgb')
        result = inference_detector(model, img[..., ::-1].copy())
        drawn = predictions_to_draw(result.pred_instances, score_thr)
        tiles.append(draw_tile(vis, img, drawn))
    while len(tiles) % 4:
        tiles.append(np.full_like(tiles[0], 255))
    # 2 px gaps between the tiles
    tiles = [np.pad(t, ((1, 1), (1, 1), (0, 0)), constant_values=255) for t in tiles]
    rows = [np.concatenate(tiles[i:i + 4], axis=1) for i in range(0, len(tiles), 4)]
    rows.append(draw_legend(vis, rows[0].shape[1], score_thr))
    mmcv.imwrite(np.concatenate(rows, axis=0)[..., ::-1], out_png)


def _duration(seconds):
    m, s = divmod(int(round(seconds)), 60)
    return f'{m} min {s:02d} s' if m else f'{s} s'


def progress_hook(total, every):
    """A hook printing "[demo] iteration n/N, s per iteration, time left" every ``every``
    iterations. The estimate leaves out the first iteration (a slow warm-up)."""
    from mmengine.hooks import Hook

    class DemoProgress(Hook):
        priority = 'VERY_LOW'
        per_iter = None  # seconds, measured from the second iteration on

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            n = runner.iter + 1  # runner.iter counts the iterations finished before this one
            if n == 1:
                self.t1 = time.time()
                return
            if n % every and n != total:
                return
            self.per_iter = per_iter = (time.time() - self.t1) / (n - 1)
            print(f'[demo] iteration {n}/{total}: {per_iter:.2f} s per iteration, about '
                  f'{_duration(per_iter * (total - n))} of training left', flush=True)

    return DemoProgress()


def main(argv=None):
    args = parse_args(argv)
    import mmattn  # noqa: F401  (compat fixes, registration)
    from mmattn.datasets import toy
    t0 = time.time()
    background = (None if args.background == 'random' else
                  tuple(int(v) for v in args.background.split(',')))
    spec = dict(num_train=args.num_train, num_val=args.num_val, img_size=args.img_size,
                seed=args.seed, background=background)
    stamp = osp.join(args.data, 'demo_data.json')
    old_spec = None
    if osp.exists(stamp):
        with open(stamp) as f:
            old_spec = json.load(f)
    if old_spec != json.loads(json.dumps(spec)):  # json turns the background tuple into a list
        import shutil
        shutil.rmtree(args.data, ignore_errors=True)
        toy.make_coco(args.data, args.num_train, args.num_val, args.img_size, args.seed,
                      background=background)
        with open(stamp, 'w') as f:
            json.dump(spec, f)
        print(f'[demo] generated toy COCO data in {args.data}: {spec}')
    cfg, config = demo_cfg(args)
    print(f'[demo] config {config}: backbone {cfg.model.backbone.type}, '
          f'{args.iters} iterations at {args.img_size} px, batch {args.batch_size}')
    from mmattn.apis import build_runner_from_cfg
    runner = build_runner_from_cfg(cfg)
    progress = progress_hook(args.iters, every=max(args.iters // 20, 1))
    runner.register_hook(progress)
    runner.train()
    t_train = time.time() - t0
    print(f'[demo] data and training took {_duration(t_train)}; evaluating on {args.num_val} '
          'val images', flush=True)
    metrics = runner.test()
    os.makedirs(args.work_dir, exist_ok=True)
    png = osp.join(args.work_dir, 'predictions.png')
    draw_predictions(runner, args.data, png)
    bbox, segm = metrics.get('coco/bbox_mAP', 0.0), metrics.get('coco/segm_mAP', 0.0)
    summary = dict(config=config, backbone=cfg.model.backbone.type, iters=args.iters,
                   train_seconds=round(t_train, 1),
                   seconds_per_iter=progress.per_iter and round(progress.per_iter, 2),
                   total_seconds=round(time.time() - t0, 1),
                   **{k: float(v) for k, v in metrics.items()})
    # an untrained model can have no detection above the score threshold: mmdet's CocoMetric
    # then returns no metric at all; the summary says 0
    summary.update({'coco/bbox_mAP': float(bbox), 'coco/segm_mAP': float(segm)})
    with open(osp.join(args.work_dir, 'demo_metrics.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print('[demo] ' + json.dumps(summary))
    print(f'[demo] COCO bbox mAP {bbox:.3f}, segm mAP {segm:.3f} '
          f'(bound {args.min_map}); predictions drawn in {png}')
    if min(bbox, segm) < args.min_map:
        print('[demo] FAILED: below the bound', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
