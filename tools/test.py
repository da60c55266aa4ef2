"""Evaluate a checkpoint with an mmattn (or any mmdet/mmseg/mmpretrain) config.

Usage: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--show-dir DIR]
       [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi] [--allow-partial-checkpoint]

The checkpoint is compared with the model first: tensors missing from it or with another shape
stop the evaluation with a list of them (``--allow-partial-checkpoint`` evaluates anyway).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
# torch, mmengine and mmattn are imported after the arguments are parsed (as in train.py).


def cfg_option(item):
    """One ``--cfg-options`` item: ``KEY=VALUE`` as ``(key, value string)`` (as in train.py:
    the two tools are scripts, loaded without a package to share code through)."""
    key, sep, value = item.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f'{item!r} is not KEY=VALUE (e.g. model.backbone.depth=101 or '
            'test_dataloader.batch_size=4; no spaces around "=")')
    return key, value


def cfg_options_dict(items):
    """``(key, value string)`` pairs as the dict mmengine's ``DictAction`` would build."""
    if not items:
        return None
    from mmengine.config import DictAction
    return {key: DictAction._parse_iterable(value) for key, value in items}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file (mmdet/mmseg)')
    parser.add_argument('--show-dir', help='save images with predictions drawn into this dir')
    parser.add_argument('--cfg-options', nargs='+', action='extend', type=cfg_option,
                        metavar='KEY=VALUE', help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--allow-partial-checkpoint', action='store_true',
                        help='evaluate even if tensors of the model are missing from the '
                        'checkpoint or have another shape (they keep their initial values)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    args.cfg_options = cfg_options_dict(args.cfg_options)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cfg(args):
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args.config, args.cfg_options)
    adapt_launcher(cfg, args.launcher)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    library = library_of(cfg)
    if args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise ValueError('--show-dir: the config has no default_hooks.visualization')
        hooks.visualization.draw = True
        if library == 'mmdet':
            hooks.visualization.test_out_dir = args.show_dir
        else:
            hooks.visualization.setdefault('interval', 1)
            cfg.visualizer.save_dir = args.show_dir
    if args.out:
        if library == 'mmdet':
            cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
                cfg.test_evaluator, dict) else list(cfg.test_evaluator)
            cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
        elif library == 'mmseg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        else:
            raise ValueError('--out: accepted for mmdet and mmseg configs only')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = setup_cfg(args)
    check_data_roots(cfg, ['test_dataloader'])
    runner = build_runner_from_cfg(cfg)
    check_checkpoint_fits(runner.model, args.checkpoint, args.allow_partial_checkpoint)
    return runner.test()


if __name__ == '__main__':
    main()
