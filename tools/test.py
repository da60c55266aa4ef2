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
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from cfg_options import cfg_option, cfg_options_dict  # noqa: E402  (no torch)
# torch, mmengine and mmattn are imported after the arguments are parsed (as in train.py).


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument(
        '--out', metavar='FILE.pkl',
        help='dump the predictions to a pickle file: a list with one dict per test image '
        "(mmdet: DumpDetResults' format, masks as RLE; mmseg: img_path and pred_sem_seg, "
        'the H x W label map; mmpretrain: pred_score, pred_label, gt_label)')
    parser.add_argument(
        '--show-dir', metavar='DIR',
        help='save the test images with the predictions drawn into DIR (relative to the '
        'current directory; mmseg: DIR/vis_data/vis_image/)')
    parser.add_argument('--cfg-options', nargs='+', action='extend', type=cfg_option,
                        metavar='KEY=VALUE', help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--allow-partial-checkpoint', action='store_true',
                        help='evaluate even if tensors of the model are missing from the '
                        'checkpoint or have another shape (they keep their initial values)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'argument --out: {args.out!r} does not end with .pkl or .pickle')
    args.cfg_options = cfg_options_dict(args.cfg_options)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cfg(args):
    import mmattn  # noqa: F401  (compat fixes, registration)
    from mmattn.apis import adapt_launcher, library_of, load_config
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
        # absolute: mmdet's hook joins a relative test_out_dir to work_dir/<timestamp>/
        show_dir = osp.abspath(args.show_dir)
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ValueError('--show-dir: the config has no default_hooks.visualization')
        if library == 'mmdet':  # every test image, into show_dir
            hook.update(draw=True, test_out_dir=show_dir)
        elif library == 'mmseg':  # every interval-th image, into show_dir/vis_data/vis_image
            hook.draw = True
            hook.setdefault('interval', 1)
            cfg.visualizer.save_dir = show_dir
        else:  # mmpretrain's hook has enable/out_dir and passes other keys to visualize_cls
            hook.pop('draw', None)
            hook.update(enable=True, out_dir=show_dir)
            hook.setdefault('interval', 1)
    if args.out and library == 'mmdet':  # encodes masks as RLE (mmseg/mmpretrain: main())
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults',
                                       out_file_path=osp.abspath(args.out)))
    return cfg


def dump_metric(out_file):
    """mmengine's ``DumpResults`` without the per-class score maps of a segmentation result
    (``seg_logits``: 150 x H x W floats per ADE20K image) and with the label map as uint8 where
    it fits; classification results are dumped whole (scores and labels)."""
    import numpy as np
    from mmengine.evaluator import DumpResults

    class DumpPredictions(DumpResults):

        def process(self, data_batch, predictions):
            slim = []
            for pred in predictions:
                pred = {k: v for k, v in pred.items() if k not in ('seg_logits', 'gt_sem_seg')}
                if 'pred_sem_seg' in pred:
                    seg = pred['pred_sem_seg']['data'].cpu().numpy()[0]
                    pred['pred_sem_seg'] = seg.astype(np.uint8) if seg.max() < 256 else seg
                slim.append(pred)
            super().process(data_batch, slim)

    return DumpPredictions(out_file_path=out_file)


def main(argv=None):
    args = parse_args(argv)
    cfg = setup_cfg(args)
    from mmattn.apis import build_runner_from_cfg, library_of
    from mmattn.apis.runner import check_checkpoint_fits, check_data_roots
    check_data_roots(cfg, ['test_dataloader'])
    runner = build_runner_from_cfg(cfg)
    check_checkpoint_fits(runner.model, args.checkpoint, args.allow_partial_checkpoint)
    if args.out and library_of(cfg) != 'mmdet':
        runner.test_evaluator.metrics.append(dump_metric(osp.abspath(args.out)))
    return runner.test()


if __name__ == '__main__':
    main()
