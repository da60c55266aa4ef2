"""Convert an official LESA checkpoint (Chenglin-Yang/LESA_classification or LESA_detection)
to mmattn keys.

    python tools/model_converters/lesa_to_mmattn.py SRC DST
        [--target backbone|classifier|detector] [--drop-position] [--config CONFIG]

``--target backbone`` (default) writes ``AttnResNet`` keys, for a backbone's
``init_cfg=dict(type='Pretrained', checkpoint=DST)``; ``--target classifier`` an mmpretrain
``ImageClassifier`` (``backbone.*`` + ``head.fc.*``) from a classification checkpoint;
``--target detector`` the whole mmdet 3.x model from an official detection checkpoint (for
``load_from``). ``--drop-position`` leaves out the classification position encoding
(``relative``, ``bn_similarity``, ``bn_output``), to start a detection backbone from an
ImageNet checkpoint (the paper initialises new position layers for detection).
Unplaced source keys are printed. With ``--config`` the model of that config is built and the
conversion is refused (exit status 1, nothing written) if a converted tensor's shape differs
from the model's; keys missing on either side are printed.
"""
import argparse
import sys
from typing import List, Optional

import torch

from mmattn.converters.lesa import TARGETS, convert_lesa


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--target', choices=TARGETS, default='backbone',
                        help='key layout of the output (default: backbone)')
    parser.add_argument('--drop-position', action='store_true',
                        help='leave out the classification position encoding (relative, '
                             'bn_similarity, bn_output)')
    parser.add_argument('--config', help='check the shapes against the model of this config')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='torch.load with weights_only=False (only for trusted files; the '
                             'official mmdet 2.x checkpoints hold mmcv objects in meta)')
    return parser.parse_args(argv)


def reference_state_dict(config: str, target: str) -> dict:
    """State dict of the model built from ``config`` (its backbone for target='backbone')."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmattn  # noqa: F401  (registers AttnResNet / LESA, compat fixes)
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import importlib
        for name in cfg.custom_imports.get('imports', []):
            importlib.import_module(name)
    if cfg.get('default_scope'):
        init_default_scope(cfg.default_scope)
    model_cfg = cfg.model
    if target == 'backbone' and 'backbone' in model_cfg:
        model_cfg = model_cfg.backbone
    model = MODELS.build(model_cfg)
    return model.state_dict()


def check_shapes(converted: dict, reference: dict) -> dict:
    mismatched = [(k, tuple(v.shape), tuple(reference[k].shape)) for k, v in converted.items()
                  if k in reference and tuple(v.shape) != tuple(reference[k].shape)]
    return dict(mismatched=mismatched,
                unexpected=sorted(k for k in converted if k not in reference),
                missing=sorted(k for k in reference if k not in converted))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=not args.unsafe_load)
    except Exception as err:  # a text file, a truncated or foreign file: torch's own error
        # SystemExit with a message: exit status 1, the message on stderr
        raise SystemExit(f'refused: {args.src} is not a PyTorch checkpoint '
                         f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})'
                         ) from err
    try:
        state_dict, report = convert_lesa(checkpoint, target=args.target,
                                          drop_position=args.drop_position)
    except ValueError as err:
        print(f'refused: {err}', file=sys.stderr)
        return 1
    print(f'converted {report["num_converted"]} tensors (format={report["format"]}, '
          f'pe_type={report["pe_type"]}, LESA blocks={report["num_lesa"]}, '
          f'meta={report["meta"]})')
    if report['dropped_position']:
        print(f'{len(report["dropped_position"])} position-encoding keys dropped '
              f'(--drop-position)')
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
    torch.save(dict(state_dict=state_dict, meta=dict(report['meta'], source=args.src,
                                                     converted_by='lesa_to_mmattn')),
               args.dst)
    print(f'wrote {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
