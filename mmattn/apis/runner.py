"""What tools/train.py and tools/test.py share: pick the library from the config, build a Runner.

A config names its library through ``default_scope`` (``mmdet``, ``mmseg`` or ``mmpretrain``),
which it inherits from the library's shipped base configs (``_base_ = 'mmdet::...'``).
"""
import os.path as osp

from mmengine.config import Config, DictAction  # noqa: F401  (re-exported for the tools)

LIBRARIES = ('mmdet', 'mmseg', 'mmpretrain')


def library_of(cfg):
    """The OpenMMLab library a config belongs to, from its ``default_scope``."""
    scope = cfg.get('default_scope', None)
    if scope not in LIBRARIES:
        raise ValueError(
            f'config {cfg.filename!r}: default_scope={scope!r}; mmattn tools accept '
            f'{", ".join(LIBRARIES)} (inherit a library base config such as '
            "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', or set default_scope)")
    return scope


def load_config(path, cfg_options=None):
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    library_of(cfg)
    return cfg


def _register(library):
    """Imports the library's modules into its registries (mmattn's are registered already)."""
    if library == 'mmdet':
        from mmdet.utils import register_all_modules
    elif library == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)


def adapt_launcher(cfg, launcher):
    """Sets ``cfg.launcher``; on a machine without CUDA, distributed runs use gloo on the CPU.

    mmengine's defaults assume one GPU per process (NCCL, DDP ``device_ids=[LOCAL_RANK]``); on
    the CPU DDP must get ``device_ids=None`` and the process group gloo.
    """
    import torch
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return cfg


def build_model_from_cfg(cfg, part=None):
    """The config's model (or ``cfg.model[part]``, e.g. its backbone, when it has one), built in
    the config's library scope with its ``custom_imports`` imported, as a tool outside the
    Runner needs it (converters, analysis tools)."""
    import importlib

    import mmattn  # noqa: F401  (compat fixes + registration)
    from mmengine.registry import MODELS, init_default_scope
    for name in (cfg.get('custom_imports') or {}).get('imports', []):
        importlib.import_module(name)
    if cfg.get('default_scope'):  # a bare model config may have none
        _register(library_of(cfg))
        init_default_scope(cfg.default_scope)
    model_cfg = cfg.model
    if part is not None and part in model_cfg:
        model_cfg = model_cfg[part]
    return MODELS.build(model_cfg)


def build_runner_from_cfg(cfg):
    """The library's Runner (a custom ``runner_type`` if the config names one)."""
    import mmattn  # noqa: F401  (compat fixes + registration)
    _register(library_of(cfg))
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


# ----------------------------------------------------------------------------------------------
# early errors naming the setting, instead of late failures deep inside a library
# (docs/what_happens_when.md)
# ----------------------------------------------------------------------------------------------
class CheckpointMismatchError(RuntimeError):
    """A checkpoint's tensors do not fit the model it is loaded into."""


def _datasets(node, path):
    """``(config path, dataset config)`` of a dataset and of every dataset it wraps."""
    if isinstance(node, dict):
        yield path, node
        if isinstance(node.get('dataset'), dict):
            yield from _datasets(node['dataset'], path + '.dataset')
        for i, sub in enumerate(node.get('datasets') or []):
            yield from _datasets(sub, f'{path}.datasets[{i}]')


def check_data_roots(cfg, splits=('train_dataloader', 'val_dataloader')):
    """Raises FileNotFoundError naming the setting and the absolute path when a dataset's
    ``data_root`` (or its ``ann_file``) does not exist; remote backends are not checked."""
    for split in splits:
        loader = cfg.get(split)
        if not isinstance(loader, dict):
            continue
        for path, ds in _datasets(loader.get('dataset'), f'{split}.dataset'):
            root = ds.get('data_root')
            if not isinstance(root, str) or not root or '://' in root or ds.get('backend_args'):
                continue
            if not osp.isdir(root):
                raise FileNotFoundError(
                    f'{path}.data_root={root!r} does not exist (looked for '
                    f'{osp.abspath(root)!r}, from {osp.abspath(".")!r}). Put the data set '
                    "there (README.md, 'Data'), generate a toy one with "
                    '`python tools/misc/make_toy_data.py`, or point the config at yours: '
                    f'--cfg-options {path}.data_root=PATH (and the evaluator ann_file).')
            ann = ds.get('ann_file')
            if isinstance(ann, str) and ann and '://' not in ann:
                full = ann if osp.isabs(ann) else osp.join(root, ann)
                if not osp.exists(full):
                    raise FileNotFoundError(
                        f'{path}.ann_file={ann!r} does not exist (looked for '
                        f'{osp.abspath(full)!r}; data_root {root!r} exists). Check the data '
                        "set's layout against README.md, 'Data'.")


def check_amp_device(cfg, requested=False):
    """mmengine's AmpOptimWrapper asserts a GPU/NPU/MLU/MUSA device; say so before it does."""
    from mmengine.device import get_device
    optim_type = (cfg.get('optim_wrapper') or {}).get('type', 'OptimWrapper')
    if not (requested or optim_type == 'AmpOptimWrapper'):
        return
    device = get_device()
    if device == 'cpu':
        what = '--amp' if requested else "optim_wrapper.type='AmpOptimWrapper' (in the config)"
        raise RuntimeError(
            f'{what}: mixed-precision training needs a GPU (or NPU/MLU/MUSA): mmengine\'s '
            'AmpOptimWrapper scales the loss with the CUDA GradScaler and refuses to run on '
            'the CPU, and this machine has no such device (torch.cuda.is_available() is '
            'False). Train on the CPU in float32: leave out --amp'
            + ('' if requested else " and set --cfg-options optim_wrapper.type=OptimWrapper")
            + '.')


def check_checkpoint_fits(model, filename, allow_partial=False):
    """Compares a checkpoint with ``model`` before it is evaluated; always logs the report
    (loaded / missing / unexpected / shape mismatch) and raises CheckpointMismatchError on a
    shape mismatch or missing key unless ``allow_partial``.

    ``tools/test.py`` calls it, and so does every mmengine Runner's ``test()``/``val()`` once
    mmattn is imported (:mod:`mmattn.engine.runner_checks`), with the same message."""
    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmattn.utils.checkpoint import (compare_with_checkpoint, format_list, format_report,
                                         state_dict_of, state_shapes)
    if is_model_wrapper(model):
        model = model.module
    ckpt = _load_checkpoint(filename, map_location='cpu')
    state = state_dict_of(ckpt)
    if state is None:
        raise CheckpointMismatchError(
            f'checkpoint {filename!r} holds no state dict of tensors (top-level keys '
            f'{sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__}); '
            'expected a checkpoint written by tools/train.py (mmengine) or a bare state dict')
    report = compare_with_checkpoint(state_shapes(model), state_shapes(state))
    print_log(format_report(type(model).__name__, repr(filename), report), logger='current')
    model._mmattn_checked_checkpoint = filename
    if allow_partial:  # the backbones' own load check (mmattn.utils.checkpoint) stands down
        for module in model.modules():
            if hasattr(module, 'partial_load_allowed'):
                module.partial_load_allowed = True
    if allow_partial or not (report['missing'] or report['mismatched']):
        return report
    lines = []
    if report['mismatched']:
        lines.append('shape mismatch ' + format_list(
            report['mismatched'], lambda m: f'{m[0]}: checkpoint {m[1]}, model {m[2]}'))
    if report['missing']:
        lines.append(f'missing from the checkpoint {format_list(report["missing"])}')
    raise CheckpointMismatchError(
        f'checkpoint {filename!r} does not fit the model of this config '
        f'({type(model).__name__}, {report["loaded"]}/{report["total"]} tensors fit): '
        + '; '.join(lines) + '. Evaluate it with the config it was trained with, or evaluate '
        'anyway (the unfitted tensors keep their random initial values) with '
        '--allow-partial-checkpoint (tools/test.py) or --cfg-options '
        'allow_partial_checkpoint=True (any runner, e.g. mim test).')
