"""Point a real config at the generated toy data, at toy size and schedule, nothing else.

The configs in ``configs/`` are the ones a researcher launches on 8 GPUs. Tests and the demo run
them unchanged except for:
- data roots (every string that starts with the config's ``data_root`` is re-rooted, so evaluator
  ``ann_file`` paths follow);
- image size: every ``scale``/``scales``/``img_scale``/``crop_size``/``size``/``stride`` number in
  pipelines, data preprocessors and test_cfg is multiplied by ``toy / reference`` where the
  reference is the library's usual size (800 px short side for mmdet, 512 for mmseg, 224 for
  mmpretrain);
- schedule: an iteration-based loop of ``max_iters`` with a constant learning rate, batch size,
  no dataloader workers, logging every iteration;
- pretrained weights: ``init_cfg`` of type 'Pretrained' is dropped (nothing can be downloaded);
- optionally (``score_thr=0.0``, used by the tests) detection score thresholds, so that a model
  trained for one step still hands the COCO evaluator predictions to score;
- optionally (``clip_grad=35``, used by the tests) a gradient-norm clip where the config has
  none: the toy runs start from random weights (no pretrained checkpoint), where some backbones
  without a zero-initialised residual BN (ResNeSt-101) take NaN-producing first steps.
"""
import copy
import numbers

REFERENCE_SIZE = {'mmdet': 800, 'mmseg': 512, 'mmpretrain': 224}
TOY_SIZES = {'mmdet': 128, 'mmseg': 64, 'mmpretrain': 32}
_SIZE_KEYS = ('scale', 'scales', 'img_scale', 'crop_size', 'size', 'stride', 'crop_ratio_range')
_NOT_SIZES = ('crop_ratio_range', )


def _scale_value(v, factor):
    if isinstance(v, bool):
        return v
    if isinstance(v, numbers.Integral):
        return max(int(round(v * factor)), 1)
    if isinstance(v, (list, tuple)):
        return type(v)(_scale_value(x, factor) for x in v)
    return v


def _walk(node, fn, path=(), seen=None):
    # a config can hold one dict under two keys (mmengine's `{{_base_.x}}` and `a = b = ...`
    # keep the object): visit it once, or its sizes are scaled twice
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, dict):
        for k in list(node.keys()):
            node[k] = fn(path + (k, ), node[k])
            _walk(node[k], fn, path + (k, ), seen)
    elif isinstance(node, list):
        for i, x in enumerate(node):
            node[i] = fn(path + (i, ), x)
            _walk(node[i], fn, path + (i, ), seen)


def _in_size_context(path):
    """Sizes live in pipelines, data preprocessors, test_cfg (slide windows), TTA."""
    keys = [p for p in path if isinstance(p, str)]
    return any(k in ('pipeline', 'data_preprocessor', 'test_cfg', 'transforms', 'tta_pipeline')
               for k in keys)


def make_toy_cfg(cfg, data_root, library=None, toy_size=None, max_iters=2, batch_size=2,
                 lr=None, val=True, score_thr=None, clip_grad=None):
    """A copy of ``cfg`` that trains ``max_iters`` iterations on the toy data in ``data_root``.

    Args:
        cfg (mmengine.Config): the real config.
        data_root (str): the generated data set (``tools/misc/make_toy_data.py``).
        library (str): 'mmdet' | 'mmseg' | 'mmpretrain'; default from ``cfg.default_scope``.
        toy_size (int): short side / crop size at toy scale (default ``TOY_SIZES``).
        lr (float): constant learning rate; default keeps the config's optimizer lr.
        score_thr (float): if given, every ``score_thr`` in ``cfg.model`` (test-time filtering).
        clip_grad (float): if given, clip the gradient norm at this value when the config's
            ``optim_wrapper`` has no ``clip_grad`` of its own.
    """
    from mmattn.apis.runner import library_of
    cfg = copy.deepcopy(cfg)
    library = library or library_of(cfg)
    toy_size = toy_size or TOY_SIZES[library]
    factor = toy_size / REFERENCE_SIZE[library]
    old_roots = set()

    def find_roots(path, v):
        if path and path[-1] == 'data_root' and isinstance(v, str):
            old_roots.add(v)
        return v

    _walk(cfg._cfg_dict, find_roots)
    roots = sorted(old_roots, key=len, reverse=True)
    new_root = data_root.rstrip('/') + '/'

    def fix(path, v):
        key = path[-1] if path else None
        if isinstance(v, str):
            for r in roots:
                if r and v.startswith(r):
                    return new_root + v[len(r):].lstrip('/')
        if key in _SIZE_KEYS and key not in _NOT_SIZES and _in_size_context(path):
            return _scale_value(v, factor)
        if key == 'init_cfg' and isinstance(v, dict) and v.get('type') == 'Pretrained':
            return None
        if (score_thr is not None and key == 'score_thr' and path[0] == 'model'
                and isinstance(v, numbers.Number)):
            return score_thr
        return v

    _walk(cfg._cfg_dict, fix)
    if 'data_root' in cfg:
        cfg.data_root = new_root

    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(split) is None:
            continue
        dl = cfg[split]
        dl.num_workers = 0
        dl.persistent_workers = False
        dl.batch_size = batch_size if split == 'train_dataloader' else 1
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
    if not val:  # no validation inside runner.train() (the test step is runner.test())
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    if clip_grad is not None and not cfg.optim_wrapper.get('clip_grad'):
        cfg.optim_wrapper.clip_grad = dict(max_norm=clip_grad, norm_type=2)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=max_iters,
                                        by_epoch=False)
    if 'log_processor' in cfg:
        cfg.log_processor.by_epoch = False
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=16)
    return cfg
