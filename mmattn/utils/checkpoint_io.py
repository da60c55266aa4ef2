"""Reading checkpoints: one reader for every entry point.

The Pretrained init, ``tools/test.py``, ``--resume`` (all through mmengine's loader, which
:func:`register_loaders` points here) and the converters read a file through
:func:`read_checkpoint`, which names the file and says in one line what is wrong: it does not
exist, it is empty, it is truncated (an interrupted write), it is not a PyTorch checkpoint, or it
holds Python objects that ``torch.load(weights_only=True)`` refuses (with the opt-in of that
entry point: ``MMATTN_TRUST_CHECKPOINTS=1`` for the tools and configs, ``--unsafe-load`` for the
converters). ``torchvision://`` and ``open-mmlab://`` names resolve from the torch hub cache
without torchvision (mmattn's stand-in has no ``torchvision.models``); offline and uncached they
fail with the URL and the file to put where.
"""
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Optional

__all__ = ['CheckpointReadError', 'read_checkpoint', 'register_loaders', 'state_dict_of']

TRUST_ENV = 'MMATTN_TRUST_CHECKPOINTS'
_ANSI = re.compile(r'\x1b\[[0-9;]*m')


class CheckpointReadError(RuntimeError):
    """A checkpoint file exists but cannot be read (the message names the file and why)."""


def _first_line(err) -> str:
    text = _ANSI.sub('', str(err)).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_checkpoint(filename: str, map_location='cpu', trust: Optional[bool] = None,
                    opt_in: str = f'set {TRUST_ENV}=1'):
    """``torch.load`` with ``weights_only=True`` (unless ``trust``), failing in one line.

    Args:
        filename: a local file.
        trust: load with ``weights_only=False``; default from ``MMATTN_TRUST_CHECKPOINTS``.
        opt_in: how the caller's user turns ``trust`` on, for the message (the converters pass
            ``'pass --unsafe-load'``).
    """
    import torch
    filename = osp.expanduser(filename)
    if trust is None:
        trust = os.environ.get(TRUST_ENV, '0') == '1'
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist (looked for '
                                f'{osp.abspath(filename)!r})')
    size = osp.getsize(filename)
    if size == 0:
        raise CheckpointReadError(
            f'checkpoint {filename!r} is empty (0 bytes): the write that made it did not '
            'finish; use an earlier checkpoint')
    with open(filename, 'rb') as f:
        head = f.read(4)
    if head == b'PK\x03\x04' and not zipfile.is_zipfile(filename):
        raise CheckpointReadError(
            f'checkpoint {filename!r} is truncated ({size} bytes, the end of the zip archive is '
            'missing): the write that made it was interrupted; use an earlier checkpoint')
    if head != b'PK\x03\x04' and not head.startswith(b'\x80'):
        raise CheckpointReadError(
            f'checkpoint {filename!r} is not a PyTorch checkpoint (it starts with {head!r}, '
            'neither a torch zip archive nor a pickle)')
    try:
        return torch.load(filename, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as err:
        if trust or 'weights_only' not in str(err) and 'Unsupported global' not in str(err):
            raise CheckpointReadError(f'checkpoint {filename!r} is not a PyTorch checkpoint '
                                      f'({_first_line(err)})') from None
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # legacy (non-zip) format
            unsafe = ['(unknown: legacy format)']
        raise CheckpointReadError(
            f'checkpoint {filename!r} holds Python objects that torch.load(weights_only=True) '
            f'refuses: {unsafe}; mmattn allow-lists only what mmengine itself stores. If you '
            f'trust this file, {opt_in} to load it with weights_only=False') from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        what = ('truncated or corrupt' if head == b'PK\x03\x04' else 'not a PyTorch checkpoint')
        raise CheckpointReadError(
            f'checkpoint {filename!r} is {what} ({_first_line(err)})') from None


def _hub_checkpoint(url: str) -> str:
    import torch
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(url))


def _load_named(filename: str, url: str, map_location):
    """A ``scheme://name`` checkpoint: the torch hub cache, else a download, else one line."""
    cached = _hub_checkpoint(url)
    if osp.isfile(cached):
        return read_checkpoint(cached, map_location)
    from mmengine.runner.checkpoint import load_from_http
    try:
        return load_from_http(url, map_location=map_location)
    except OSError as err:  # URLError, socket errors: offline
        raise FileNotFoundError(
            f'checkpoint {filename!r} is not in the torch hub cache and could not be downloaded '
            f'({_first_line(err)}): download {url} to {cached!r}, or set the init_cfg '
            "checkpoint to a local file (README.md, 'Using a backbone in your own config'), or "
            'init_cfg=None / pretrained=None to train from scratch') from None


def _load_from_torchvision(filename, map_location=None):
    """``torchvision://NAME`` (and ``modelzoo://``) from mmengine's table of torchvision URLs,
    without importing torchvision (mmattn's stand-in has no ``torchvision.models``)."""
    import mmengine
    name = filename.split('://', 1)[1]
    urls = mmengine.load(osp.join(mmengine.__path__[0], 'hub/torchvision_0.12.json'))
    if name not in urls:
        raise ValueError(f'checkpoint {filename!r}: unknown torchvision model {name!r}; known: '
                         f'{sorted(urls)}')
    return _load_named(filename, urls[name], map_location)


def _load_from_openmmlab(filename, map_location=None):
    from mmengine.runner.checkpoint import get_deprecated_model_names, get_external_models
    name = filename.split('://', 1)[1]
    urls = get_external_models()
    name = get_deprecated_model_names().get(name, name)
    if name not in urls:
        raise ValueError(f'checkpoint {filename!r}: unknown open-mmlab model {name!r}')
    url = urls[name]
    if not url.startswith(('http://', 'https://')):
        return read_checkpoint(url, map_location)
    return _load_named(filename, url, map_location)


def _load_from_local(filename, map_location=None):
    return read_checkpoint(filename, map_location)


def register_loaders() -> None:
    """Points mmengine's checkpoint loader at :func:`read_checkpoint` for local files and at the
    hub-cache resolvers for ``torchvision://``, ``modelzoo://``, ``open-mmlab://``."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
    CheckpointLoader.register_scheme(prefixes=('torchvision://', 'modelzoo://'),
                                     loader=_load_from_torchvision, force=True)
    CheckpointLoader.register_scheme(prefixes=('open-mmlab://', 'openmmlab://'),
                                     loader=_load_from_openmmlab, force=True)


def state_dict_of(checkpoint) -> Optional[dict]:
    """The tensors of a loaded checkpoint (``state_dict`` of an mmengine one, or a bare state
    dict), with a DDP ``module.`` prefix removed; None when it holds none."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(hasattr(v, 'shape')
                                                           for v in state.values()):
        return None
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}
