"""Unary / binary weight shares of LESA's dynamic fusion (the "Weights" column of LESA Table 2).

    python tools/analysis_tools/lesa_weight_shares.py
        [--config configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py] [--checkpoint CKPT]
        [--images IMG ... | --random N] [--size H [W]] [--out-dir DIR]

The paper's Table 2 reports ``1 / (1 + omega)`` (unary) and ``omega / (1 + omega)`` (binary)
of LESA's fusion gate omega, "averaged across the spatial locations, feature channels, and
layers"; the tool prints the shares per layer (mean over images, channels and positions) and
overall (mean of the layers, as the paper), and draws the channel-mean gate of the first
image, one panel per layer, as ``DIR/lesa_gate.png`` (:mod:`mmattn.analysis.lesa_shares`).

Only the backbone runs (every LESA is in it). Images are resized to ``--size`` (default 224,
the ImageNet test size; a detection config works at any size) and normalised with the
config's ``data_preprocessor`` mean/std (ImageNet's when it has none). ``--checkpoint`` is an
mmattn checkpoint (an official one converted by tools/model_converters/lesa_to_mmattn.py).
On random weights (no ``--checkpoint``) the numbers mean nothing: they only show the tool runs.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'lesa', 'lesa-r50_4xb32-cos-90e_in1k.py')


def parse_args(argv=None):
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
    parser.add_argument('--verbose', action='store_true', help='library logs at INFO')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmattn.analysis import lesa_shares, quiet
    quiet(args.verbose)
    result = lesa_shares.measure(args.config, args.checkpoint, args.images, args.random,
                                 args.size, args.seed, args.out_dir)
    if not args.checkpoint:
        print('random weights (no --checkpoint): these numbers mean nothing')
    print(f'{"layer":<24} {"gate shape":>16} {"unary %":>8} {"binary %":>9}')
    for name, v in result['per_layer'].items():
        print(f'{name:<24} {str(v["shape"]):>16} {100 * v["unary"]:8.2f} '
              f'{100 * v["binary"]:9.2f}')
    overall = result['overall']
    print(f'{"overall (mean of layers)":<41} {100 * overall["unary"]:8.2f} '
          f'{100 * overall["binary"]:9.2f}')
    print(f'heat map: {result["png"]}')
    return result


if __name__ == '__main__':
    main()
