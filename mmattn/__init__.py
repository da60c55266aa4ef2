"""mmattn: attention backbones for OpenMMLab 3.x.

Importing mmattn applies the torch 2.13 / numpy 2 compatibility fixes (:mod:`mmattn.compat`)
and registers every operator, backbone and head in mmengine's root MODELS registry (hooks in
its root HOOKS), which mmdet, mmseg and mmpretrain all fall back to; every mmengine Runner then
runs mmattn's checks (:mod:`mmattn.engine.runner_checks`).
"""
from . import compat
from .version import __version__

compat.apply()

from . import models  # noqa: E402,F401  (registration)
from . import engine  # noqa: E402  (hooks; mmattn's checks in every Runner)

engine.install_runner_checks()

__all__ = ['__version__', 'compat', 'engine', 'models']
