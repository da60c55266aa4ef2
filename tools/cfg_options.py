"""``--cfg-options`` parsing shared by tools/train.py and tools/test.py, importable without torch
(the tools parse their arguments before the heavy imports, so a mistake is answered at once)."""
import argparse


def cfg_option(item):
    """One ``--cfg-options`` item: ``KEY=VALUE`` as ``(key, value string)``."""
    key, sep, value = item.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f'{item!r} is not KEY=VALUE (e.g. model.backbone.depth=101 or '
            'train_dataloader.batch_size=4; no spaces around "=")')
    return key, value


def cfg_options_dict(items):
    """``(key, value string)`` pairs as the dict mmengine's ``DictAction`` would build."""
    if not items:
        return None
    from mmengine.config import DictAction
    return {key: DictAction._parse_iterable(value) for key, value in items}
