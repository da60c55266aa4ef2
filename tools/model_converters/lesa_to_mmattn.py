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
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from converter_args import add_common_args  # noqa: E402  (no torch: --help answers at once)

# mmattn.converters.lesa.TARGETS (tests/test_converters/test_converter_cli.py checks they agree)
TARGETS = ('backbone', 'classifier', 'detector')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_common_args(parser, TARGETS,
                    unsafe_help='torch.load with weights_only=False (only for trusted files; '
                                'the official mmdet 2.x checkpoints hold mmcv objects in meta)')
    parser.add_argument('--drop-position', action='store_true',
                        help='leave out the classification position encoding (relative, '
                             'bn_similarity, bn_output)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmattn.converters.cli import run
    from mmattn.converters.lesa import convert_lesa
    return run(args, lambda ckpt: convert_lesa(ckpt, target=args.target,
                                               drop_position=args.drop_position),
               lambda r: (f'format={r["format"]}, pe_type={r["pe_type"]}, '
                          f'LESA blocks={r["num_lesa"]}, meta={r["meta"]}'),
               converted_by='lesa_to_mmattn',
               notes=lambda r: [f'{len(r["dropped_position"])} position-encoding keys dropped '
                                '(--drop-position)'] if r['dropped_position'] else [])


if __name__ == '__main__':
    sys.exit(main())
