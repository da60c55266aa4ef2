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


def build_runner_from_cfg(cfg):
    """The library's Runner (a custom ``runner_type`` if the config names one)."""
    import mmattn  # noqa: F401  (compat fixes + registration)
    _register(library_of(cfg))
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
