"""Layer-attention maps of MRLA (the paper's Figure 1a) as PNG files.

    python tools/analysis_tools/mrla_attention_map.py [--config CFG] [--checkpoint CKPT]
        [--image IMG] [--img-size 224] [--mrla-type base|light|both] [--head N]
        [--out-dir work_dirs/mrla_attention]

* MRLA-base: for every stage a lower-triangular map; row t is block t's softmax over
  blocks 1..t of the stage (each row sums to 1). ``mrla_base_attention.png``.
* MRLA-light: for every stage the per-head sigmoid gates of each block (blocks x heads).
  ``mrla_light_gates.png``.

Without ``--config`` a default ``MRLAResNet-50`` is built (both types with ``--mrla-type
both``, the default); with it, the config's backbone (``model.backbone`` or ``model``) and
its ``mrla_type``. ``--checkpoint`` takes an mmattn checkpoint (a backbone or a full model,
``backbone.`` is stripped) or an official one (converted on the fly). Without ``--image``
the input is random (seeded). The paper shows one head; ``--head`` picks one, the default
averages the heads (rows still sum to 1). The work: :mod:`mmattn.analysis.mrla_maps`.
One block's layer attention on an image, like every other operator's maps:
``tools/analysis_tools/attention_map.py CONFIG IMAGE --layer backbone.layer3.4.mrla``.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Draw MRLA layer-attention maps (Figure 1a).')
    p.add_argument('--config', help='config whose model (or model.backbone) is MRLAResNet')
    p.add_argument('--checkpoint', help='mmattn or official checkpoint')
    p.add_argument('--image', help='input image (default: random input)')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--depth', type=int, default=50, help='default model depth (no --config)')
    p.add_argument('--mrla-type', choices=('base', 'light', 'both'), default='both',
                   help='default models to draw (no --config)')
    p.add_argument('--head', type=int, help='one head (default: mean over heads)')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default='work_dirs/mrla_attention')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmattn.analysis import quiet
    quiet(args.verbose)
    from mmattn.analysis.mrla_maps import draw_maps
    written = draw_maps(args.config, args.checkpoint, args.image, args.img_size, args.depth,
                        args.mrla_type, args.head, args.seed, args.out_dir)
    for path in written:
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main(sys.argv[1:])
