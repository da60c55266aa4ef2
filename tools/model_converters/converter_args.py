"""The arguments every ``*_to_mmattn.py`` converter takes, importable without torch so that
``--help`` answers at once (anything under ``mmattn`` imports torch and the OpenMMLab stack)."""
import argparse


def add_common_args(parser: argparse.ArgumentParser, targets, unsafe_help: str) -> None:
    parser.add_argument('src', help='official checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--target', choices=targets, default=targets[0],
                        help=f'key layout of the output (default: {targets[0]})')
    parser.add_argument('--config', help='check the shapes against the model of this config')
    parser.add_argument('--unsafe-load', action='store_true', help=unsafe_help)
