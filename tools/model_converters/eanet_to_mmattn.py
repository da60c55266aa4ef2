"""Convert an official EANet checkpoint (github.com/MenghaoGuo/EANet) to mmseg/mmattn keys.

    python tools/model_converters/eanet_to_mmattn.py SRC DST [--target segmentor|backbone]
        [--config CONFIG]

``--target segmentor`` (default) writes the keys of the whole ``EncoderDecoder`` (backbone and
``EAHead``; the released weights are Pascal VOC's 21 classes); ``--target backbone`` only the
ResNet keys, for the backbone ``init_cfg`` of
``configs/external_attention/eanet-official_r101-d8_4xb4-80k_ade20k-512x512.py``, which loads
``checkpoints/eanet-r101_official_backbone.pth`` (write DST there). With
``--config`` the conversion is refused (exit status 1, nothing written) if a converted tensor's
shape differs from that config's model.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from converter_args import add_common_args  # noqa: E402  (no torch: --help answers at once)

# mmattn.converters.eanet.TARGETS (tests/test_converters/test_converter_cli.py checks they agree)
TARGETS = ('segmentor', 'backbone')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_common_args(parser, TARGETS,
                    unsafe_help='torch.load with weights_only=False (only for trusted files '
                                'that hold more than tensors and plain containers)')
    parser.set_defaults(target='segmentor')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmattn.converters.cli import run
    from mmattn.converters.eanet import convert_eanet
    return run(args, lambda ckpt: convert_eanet(ckpt, target=args.target, require_ea=True),
               lambda r: f'num_classes={r["num_classes"]}, meta={r["meta"]}',
               converted_by='eanet_to_mmattn')


if __name__ == '__main__':
    sys.exit(main())
