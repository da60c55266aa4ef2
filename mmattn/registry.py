"""mmattn registers into mmengine's root MODELS registry.

mmdet, mmseg and mmpretrain's MODELS registries are children of mmengine's root MODELS, and a
child registry falls back to its parents, so one registration makes a class visible to all three
libraries (and to mmcv's ``build_conv_layer`` / ``build_plugin_layer``). Names must not collide
with anything those libraries define.
"""
from mmengine.registry import MODELS

__all__ = ['MODELS']
