"""mmattn: attention backbones for OpenMMLab 3.x.

Importing mmattn applies the torch 2.13 / numpy 2 compatibility fixes (:mod:`mmattn.compat`)
and registers every operator, backbone and head in mmengine's root MODELS registry, which
mmdet, mmseg and mmpretrain all fall back to.
"""
from . import compat
from .version import __version__

compat.apply()

from . import models  # noqa: E402,F401  (registration)

__all__ = ['__version__', 'compat', 'models']
