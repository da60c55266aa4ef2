"""Extra parameters and multiply-adds of MRLA over ResNet, measured on our configs' backbones.

    python tools/analysis_tools/mrla_extra_cost.py [--source imagenet|coco]
        [--depths 50 101] [--types light base] [--shape 224 224] [--no-flops]

For every depth and MRLA type the backbone of the MRLA config and of its baseline config is
built (nothing loaded) and compared (:mod:`mmattn.analysis.mrla_cost`):

* ``--source imagenet`` (default): ``configs/mrla/mrla-{type}-r{depth}_8xb32_in1k.py`` against
  ``configs/mrla/resnet{depth}_8xb32-warmup_in1k.py``;
* ``--source coco``: ``configs/mrla/faster-rcnn_mrla-light-r{depth}_fpn_1x_coco.py`` against
  ``configs/resnet/faster-rcnn_r{depth}_fpn_1x_coco.py`` (MRLA-light only).

Multiply-adds are the ledger's (``docs/paper_tables.md``, the same counter): convolutions,
matrix products and MRLA-base's attention-weighted sum of the value maps (block t of a stage:
t multiply-adds per value element), one image of ``--shape``; "thop-style" adds 2 per
BatchNorm element and 1 per pooled element, the MRLA paper's convention.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--source', choices=('imagenet', 'coco'), default='imagenet')
    p.add_argument('--depths', type=int, nargs='+', default=[50, 101])
    p.add_argument('--types', nargs='+', choices=('light', 'base'), default=None,
                   help='default: light and base (imagenet), light (coco)')
    p.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    p.add_argument('--no-flops', action='store_true', help='parameters only (fast)')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    types = args.types or (['light', 'base'] if args.source == 'imagenet' else ['light'])
    sys.path.insert(0, REPO)
    from mmattn.analysis import Progress, quiet
    quiet(args.verbose)
    from mmattn.analysis.mrla_cost import format_row, measure
    progress = Progress(len(args.depths) * len(types), 'measured', stream=sys.stderr)
    rows = []
    for depth in args.depths:
        for mrla_type in types:
            row = measure(args.source, depth, mrla_type, args.shape, not args.no_flops)
            print(format_row(row), flush=True)
            progress.step(f'R{depth} MRLA-{mrla_type}')
            rows.append(row)
    return rows


if __name__ == '__main__':
    main()
