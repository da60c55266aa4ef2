"""One way to build a config's model for measuring: nothing downloaded, nothing loaded."""
import copy
import itertools
import os.path as osp

from .cli import repo_root

__all__ = ['build_model', 'load_cfg', 'drop_pretrained']

_SCOPES = itertools.count()


def load_cfg(cfg):
    """A ``Config`` from a path (absolute, or relative to the working directory or to the
    repository) or a copy of a given ``Config``."""
    from mmengine.config import Config
    if isinstance(cfg, Config):
        return copy.deepcopy(cfg)
    path = cfg if osp.isabs(cfg) or osp.isfile(cfg) else osp.join(repo_root(), cfg)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {cfg!r} does not exist')
    return Config.fromfile(path)


def drop_pretrained(node):
    """Removes every ``init_cfg`` of type ``Pretrained`` (and ``pretrained=``) under ``node``."""
    if isinstance(node, dict):
        node.pop('pretrained', None)
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node.pop('init_cfg')
        for v in node.values():
            drop_pretrained(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            drop_pretrained(v)
    return node


def build_model(cfg, pretrained=False, part=None):
    """The model of ``cfg`` (a path or a ``Config``), or its ``model[part]`` (e.g.
    ``'backbone'``), in the config's library scope, through
    :func:`mmattn.apis.build_model_from_cfg`.

    With ``pretrained=False`` every Pretrained ``init_cfg`` is dropped first, so nothing is
    downloaded or loaded. The module is returned as built (training mode, weights not
    initialised): callers that measure set ``eval()`` themselves (not chained: some
    backbones' ``train()`` returns None).
    """
    from mmattn.apis import build_model_from_cfg
    cfg = load_cfg(cfg)
    if not pretrained:
        drop_pretrained(cfg.model)
    _enter_scope(cfg.get('default_scope'))
    return build_model_from_cfg(cfg, part)


def _enter_scope(scope):
    # a tool builds configs of several libraries in turn: the switch is intended, not worth
    # the warning mmengine's init_default_scope prints when it has to make it
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    if scope and current is not None and current.scope_name != scope:
        DefaultScope.get_instance(f'mmattn-analysis-{scope}-{next(_SCOPES)}', scope_name=scope)
