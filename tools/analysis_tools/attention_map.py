"""What one attention layer attends to, drawn on an image, as a PNG.

    python tools/analysis_tools/attention_map.py CONFIG IMAGE --layer NAME --query Y X
        [--checkpoint CKPT] [--img-size 224] [--out attention_map.png] [--seed 0]
        [--verbose]
    python tools/analysis_tools/attention_map.py CONFIG --list-layers

IMAGE is a file, or ``toy`` / ``toy:SEED`` for a generated scene (shapes on a background). It
is resized to ``--img-size`` square and normalised with the config's data preprocessor;
``--query Y X`` is a pixel of that resized image. NAME is a qualified module name of the
model (``--list-layers`` prints them). Without ``--checkpoint`` the weights are random (no
pretrained weights are loaded) and the title says so. What is drawn for each operator:
:mod:`mmattn.analysis.attention_maps`.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Draw what an attention layer (LESA, SA, AA, LA-layer, MRLA, External '
        'Attention) attends to for one query pixel.')
    p.add_argument('config', help='model config')
    p.add_argument('image', nargs='?', help="image file, or 'toy' / 'toy:SEED' (generated)")
    p.add_argument('--checkpoint', help='mmattn checkpoint (default: random weights)')
    p.add_argument('--allow-partial-checkpoint', action='store_true',
                   help='draw even when checkpoint tensors are missing or do not fit')
    p.add_argument('--layer', help='attention module name (see --list-layers)')
    p.add_argument('--query', nargs=2, type=int, metavar=('Y', 'X'),
                   help='query pixel of the resized image (default: its centre)')
    p.add_argument('--img-size', type=int, default=224, help='square input side (224)')
    p.add_argument('--out', default='attention_map.png', help='PNG to write')
    p.add_argument('--seed', type=int, default=0, help='seed of the random weights (0)')
    p.add_argument('--list-layers', action='store_true', help='print the attention layers')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    args = p.parse_args(argv)
    if not args.list_layers and (args.image is None or args.layer is None):
        p.error('IMAGE and --layer are required (or --list-layers)')
    if args.img_size < 8:
        p.error(f'--img-size={args.img_size} must be at least 8')
    if args.query is not None and not all(0 <= v < args.img_size for v in args.query):
        p.error(f'--query {args.query[0]} {args.query[1]} must lie in the resized image '
                f'(0..{args.img_size - 1})')
    return args


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmattn.analysis.cli import Progress, quiet
    quiet(args.verbose)
    progress = Progress(3, 'attention map', stream=sys.stderr)
    from mmattn.analysis import attention_maps as am
    from mmattn.analysis.build import build_model, load_cfg
    from mmattn.analysis.cli import quiet_mmengine
    import torch
    torch.manual_seed(args.seed)  # random weights: the same picture for the same command
    cfg = load_cfg(args.config)
    model = build_model(cfg)
    quiet_mmengine()
    layers = am.recording_layers(model)
    if args.list_layers:
        for name, kind in layers.items():
            print(f'{name}\t{kind}')
        return layers
    if args.checkpoint:
        from mmengine.runner import load_checkpoint

        from mmattn.apis.runner import check_checkpoint_fits
        check_checkpoint_fits(model, args.checkpoint, args.allow_partial_checkpoint)
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    else:
        model.init_weights()
    model.eval()
    progress.step('model built')
    img = am.load_image(args.image, args.img_size)
    query = tuple(args.query) if args.query else (args.img_size // 2, args.img_size // 2)
    record = am.run_and_record(model, am.to_input(img, *am.input_stats(cfg)), args.layer)
    progress.step('forward pass recorded')
    weights = f'checkpoint {osp.basename(args.checkpoint)}' if args.checkpoint else \
        'random weights (no checkpoint)'
    title = f'{osp.basename(args.config)}: {args.layer} ({layers[args.layer]}), {weights}'
    am.draw_record(record, img, query, args.layer, layers[args.layer], title, args.out)
    progress.step('figure drawn')
    print(f'wrote {args.out}')
    return args.out


if __name__ == '__main__':
    try:
        main(sys.argv[1:])
    except Exception as e:  # bad input (a config, layer, image, checkpoint): one line
        if not isinstance(e, (ValueError, FileNotFoundError)) and \
                type(e).__name__ != 'CheckpointMismatchError':
            raise
        sys.exit(f'attention_map.py: error: {e}')
