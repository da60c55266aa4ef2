"""What every ``tools/model_converters/*_to_mmattn.py`` command does around its pure converter:
load the source safely, print what was not placed, check shapes against a config's model,
refuse on a mismatch, write ``{'state_dict', 'meta'}``.

A new paper's converter CLI adds its arguments with ``tools/model_converters/converter_args.py``
(no torch import, so ``--help`` is quick) and hands its ``convert_*`` function to :func:`run`.
"""
import argparse
import sys

import torch


def load_source(path: str, unsafe: bool = False) -> dict:
    """The checkpoint at ``path`` on CPU (``weights_only`` unless ``unsafe``); a file that is
    missing, empty, truncated, not a checkpoint, or holds Python objects exits with status 1 and
    one line naming the file (and ``--unsafe-load`` where that would help)."""
    from mmattn.utils.checkpoint import CheckpointReadError, read_checkpoint
    try:
        return read_checkpoint(path, 'cpu', trust=unsafe, opt_in='pass --unsafe-load')
    except (CheckpointReadError, FileNotFoundError) as err:
        raise SystemExit(f'refused: {err}') from None


def reference_state_dict(config: str, target: str) -> dict:
    """State dict of the model built from ``config`` (its backbone for target='backbone')."""
    from mmengine.config import Config

    from mmattn.apis import build_model_from_cfg
    part = 'backbone' if target == 'backbone' else None
    return build_model_from_cfg(Config.fromfile(config), part).state_dict()


def check_shapes(converted: dict, reference: dict) -> dict:
    """Keys whose shapes differ (key, converted shape, model shape), keys only in ``converted``
    (unexpected), keys only in ``reference`` (missing): the comparison of every other load."""
    from mmattn.utils.checkpoint import compare_with_checkpoint, state_shapes
    return compare_with_checkpoint(state_shapes(reference), state_shapes(converted))


def run(args: argparse.Namespace, convert, describe, converted_by: str, notes=None) -> int:
    """The whole command: load ``args.src``, ``convert(checkpoint)`` (a ``ValueError`` refuses:
    exit status 1, nothing written), print ``describe(report)`` and the lines of
    ``notes(report)``, then :func:`finish`."""
    checkpoint = load_source(args.src, args.unsafe_load)
    try:
        state_dict, report = convert(checkpoint)
    except ValueError as err:
        print(f'refused: {err}', file=sys.stderr)
        return 1
    print(f'converted {report["num_converted"]} tensors ({describe(report)})')
    for line in (notes(report) if notes else ()):
        print(line)
    return finish(state_dict, report, args, converted_by)


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
