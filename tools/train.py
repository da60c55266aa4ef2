"""Train a model from an mmattn (or any mmdet/mmseg/mmpretrain) config.

Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
       [--auto-scale-lr] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from cfg_options import cfg_option, cfg_options_dict  # noqa: E402  (no torch)
# torch, mmengine and mmattn are imported after the arguments are parsed: `--help` and a
# mistyped argument answer in a fraction of a second instead of after the imports' 5-30 s.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model (mmdet, mmseg, mmpretrain)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a path, from the latest checkpoint '
        'in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action='extend', type=cfg_option,
                        metavar='KEY=VALUE', help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    args.cfg_options = cfg_options_dict(args.cfg_options)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cfg(args):
    import mmattn  # noqa: F401  (compat fixes, registration)
    from mmattn.apis import adapt_launcher, load_config
    from mmattn.apis.runner import check_amp_device
    cfg = load_config(args.config, args.cfg_options)
    adapt_launcher(cfg, args.launcher)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    check_amp_device(cfg, requested=args.amp)
    if args.amp:
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type == 'AmpOptimWrapper':
            print('AMP is already enabled in the config.')
        elif optim_type != 'OptimWrapper':
            raise ValueError(f'--amp: optim_wrapper.type={optim_type!r}; --amp accepts '
                             "'OptimWrapper' or 'AmpOptimWrapper'")
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = setup_cfg(args)
    from mmattn.apis import build_runner_from_cfg, library_of
    from mmattn.apis.runner import check_data_roots
    print(f'[mmattn] {library_of(cfg)} config {args.config}, work dir {cfg.work_dir}')
    splits = ['train_dataloader'] + (['val_dataloader'] if cfg.get('val_cfg') else [])
    check_data_roots(cfg, splits)  # a missing data set fails here, naming the path
    runner = build_runner_from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
