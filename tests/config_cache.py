"""Loading every config of configs/ once per test process, for the static checks that read all
of them (schedules, figures, checkpoint prefixes).

``mmengine.Config.fromfile`` parses every base file again for every config, and resolves every
``mmdet::`` base by reading all 600 metafiles of the library (about 1.4 s a config on the
2-core machine); here both are done once per file, which makes a pass over configs/ much
cheaper. The
configs returned are shared too: callers must not modify them (``copy.deepcopy`` first).
"""
import copy
import glob
import os.path as osp
from functools import lru_cache

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def all_configs():
    """Paths relative to configs/ of every config (not the ``_base_`` pieces)."""
    return sorted(osp.relpath(p, osp.join(REPO, 'configs'))
                  for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                  if '_base_' not in p.split(osp.sep))


_PARSED = {}
_PATHS = {}


@lru_cache(maxsize=None)
def load(rel):
    """The Config of ``configs/<rel>``, built as ``Config.fromfile`` builds it."""
    from mmengine.config import Config
    original = Config.__dict__['_file2dict']

    def cached(filename, *args, **kwargs):
        key = (osp.realpath(filename), args, tuple(sorted(kwargs.items())))
        if key not in _PARSED:
            _PARSED[key] = original.__func__(filename, *args, **kwargs)
        return copy.deepcopy(_PARSED[key])

    original_path = Config.__dict__['_get_cfg_path']

    def cached_path(cfg_path, filename):
        # a package base (mmdet::x.py) does not depend on the file that names it
        key = cfg_path if '::' in cfg_path else (cfg_path, osp.dirname(osp.realpath(filename)))
        if key not in _PATHS:
            _PATHS[key] = original_path.__func__(cfg_path, filename)
        return _PATHS[key]

    Config._file2dict = staticmethod(cached)
    Config._get_cfg_path = staticmethod(cached_path)
    try:
        return Config.fromfile(osp.join(REPO, 'configs', rel))
    finally:
        Config._file2dict = original
        Config._get_cfg_path = original_path
