"""Write the generated COCO / ADE20K / ImageNet-format data sets (see mmattn/datasets/toy.py).

Usage: python tools/misc/make_toy_data.py [--out data/toy] [--kinds coco ade20k imagenet]
       [--seed 0] [--num-train 64] [--num-val 16] [--img-size 128]
Writes <out>/coco, <out>/ade20k, <out>/imagenet: point a config's data_root there.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

KINDS = ('coco', 'ade20k', 'imagenet')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='data/toy')
    p.add_argument('--kinds', nargs='+', default=list(KINDS), choices=KINDS)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-train', type=int, default=64, help='COCO/ADE20K training images')
    p.add_argument('--num-val', type=int, default=16, help='COCO/ADE20K validation images')
    p.add_argument('--img-size', type=int, default=128)
    a = p.parse_args(argv)
    from mmattn.datasets import toy  # after parsing: importing mmattn imports torch
    if 'coco' in a.kinds:
        toy.make_coco(osp.join(a.out, 'coco'), a.num_train, a.num_val, a.img_size, a.seed)
    if 'ade20k' in a.kinds:
        toy.make_ade20k(osp.join(a.out, 'ade20k'), a.num_train, a.num_val, a.img_size, a.seed)
    if 'imagenet' in a.kinds:
        toy.make_imagenet(osp.join(a.out, 'imagenet'), max(a.num_train // 8, 2),
                          max(a.num_val // 8, 1), min(a.img_size, 64), a.seed)
    print(f'[mmattn] toy data ({", ".join(a.kinds)}, seed {a.seed}) written to {a.out}')


if __name__ == '__main__':
    main()
