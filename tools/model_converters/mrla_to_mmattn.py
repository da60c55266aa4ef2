"""Convert an official MRLA checkpoint (github.com/joyfang1106/MRLA) to mmattn keys.

    python tools/model_converters/mrla_to_mmattn.py SRC DST [--target backbone|classifier]
        [--config CONFIG]

``--target backbone`` (default) writes ``MRLAResNet`` keys, for a detector's or segmentor's
``backbone.init_cfg=dict(type='Pretrained', checkpoint=DST)``; ``--target classifier`` writes
an mmpretrain ``ImageClassifier`` (``backbone.*`` and the ImageNet head as ``head.fc.*``).
Unplaced source keys are printed. With ``--config`` the model of that config is built and
the conversion is refused (exit status 1, nothing written) if a converted tensor's shape
differs from the model's; keys missing on either side are printed.
"""

import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from converter_args import add_common_args  # noqa: E402  (no torch: --help answers at once)

# mmattn.converters.mrla.TARGETS (tests/test_converters/test_converter_cli.py checks they agree)
TARGETS = ('backbone', 'classifier')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_common_args(parser, TARGETS,
                    unsafe_help='torch.load with weights_only=False (only for trusted files '
                                'that hold more than tensors and plain containers)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmattn.converters.cli import run
    from mmattn.converters.mrla import convert_mrla
    return run(args, lambda ckpt: convert_mrla(ckpt, target=args.target, require_mrla=True),
               lambda r: (f'mrla_type={r["mrla_type"]}, deep_stem={r["deep_stem"]}, '
                          f'meta={r["meta"]}'),
               converted_by='mrla_to_mmattn')


if __name__ == '__main__':
    sys.exit(main())
