"""What every ``tools/model_converters/*_to_mmattn.py`` command does around its pure converter:
load the source safely, print what was not placed, check shapes against a config's model,
refuse on a mismatch, write ``{'state_dict', 'meta'}``.

A new paper's converter CLI adds its arguments with :func:`add_common_args`, calls its
``convert_*`` function and hands the result to :func:`finish`.
"""
import argparse
import sys

import torch


def add_common_args(parser: argparse.ArgumentParser, targets, unsafe_help: str) -> None:
    parser.add_argument('src', help='official checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--target', choices=targets, default='backbone',
                        help='key layout of the output (default: backbone)')
    parser.add_argument('--config', help='check the shapes against the model of this config')
    parser.add_argument('--unsafe-load', action='store_true', help=unsafe_help)


def load_source(path: str, unsafe: bool = False) -> dict:
    """``torch.load`` on CPU (``weights_only`` unless ``unsafe``); anything that is not a
    PyTorch checkpoint exits with status 1 and one line naming the file."""
    try:
        return torch.load(path, map_location='cpu', weights_only=not unsafe)
    except Exception as err:  # a text file, a truncated or foreign file: torch's own error
        first = str(err).splitlines()[0] if str(err) else ''
        raise SystemExit(f'refused: {path} is not a PyTorch checkpoint '
                         f'({type(err).__name__}: {first})') from err


def reference_state_dict(config: str, target: str) -> dict:
    """State dict of the model built from ``config`` (its backbone for target='backbone')."""
    from mmengine.config import Config

    from mmattn.apis import build_model_from_cfg
    part = 'backbone' if target == 'backbone' else None
    return build_model_from_cfg(Config.fromfile(config), part).state_dict()


def check_shapes(converted: dict, reference: dict) -> dict:
    """Keys whose shapes differ, keys only in ``converted``, keys only in ``reference``."""
    mismatched = [(k, tuple(v.shape), tuple(reference[k].shape)) for k, v in converted.items()
                  if k in reference and tuple(v.shape) != tuple(reference[k].shape)]
    return dict(mismatched=mismatched,
                unexpected=sorted(k for k in converted if k not in reference),
                missing=sorted(k for k in reference if k not in converted))


def finish(state_dict: dict, report: dict, args: argparse.Namespace, converted_by: str) -> int:
    """Print the unplaced keys, check against ``args.config``, write ``args.dst``.

    Returns the exit status: 1 (nothing written) on any shape mismatch.
    """
    if report['unplaced']:
        print(f'{len(report["unplaced"])} unplaced source keys (not written):')
        for key in report['unplaced']:
            print(f'  {key}')
    if args.config:
        result = check_shapes(state_dict, reference_state_dict(args.config, args.target))
        for key in result['unexpected']:
            print(f'  not in the model: {key}')
        for key in result['missing']:
            print(f'  not in the checkpoint: {key}')
        if result['mismatched']:
            print(f'refused: {len(result["mismatched"])} shape mismatches against '
                  f'{args.config}:', file=sys.stderr)
            for key, got, want in result['mismatched']:
                print(f'  {key}: checkpoint {got}, model {want}', file=sys.stderr)
            return 1
    meta = dict(report['meta'], source=args.src, converted_by=converted_by)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'wrote {args.dst}')
    return 0
