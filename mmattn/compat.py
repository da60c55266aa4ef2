"""Fixes that let the last OpenMMLab 3.x releases run on torch >= 2.6 and numpy 2.

Applied once when :mod:`mmattn` is imported; nothing in site-packages is edited. Each fix names
the error it prevents and has a test in ``tests/test_compat.py`` that fails without it.

1. ``torch_load_weights_only``: torch >= 2.6 loads with ``weights_only=True`` by default and
   mmengine 0.10.7 does not pass the argument, so resuming fails with ``Unsupported global:
   mmengine.logging.history_buffer.HistoryBuffer`` (the message hub and numpy scalars mmengine
   stores in every checkpoint). Fix: allow-list exactly the globals mmengine writes into its own
   checkpoints; anything else still needs an explicit decision by the user.
2. ``numpy2_adjust_hue``: mmcv 2.1.0's ``adjust_hue`` adds a negative hue offset to a uint8 hue
   channel; numpy 2 raises ``OverflowError: Python integer -N out of bounds for uint8``
   (numpy 1 wrapped silently). Fix: compute the shift in int16 and wrap it modulo 180.
3. ``torchvision_stub``: mmpretrain imports torchvision at import; where no torchvision works
   (CPU torch from PyPI) a documented stand-in is installed, see
   :mod:`mmattn.utils.torchvision_stub`. A working torchvision is never replaced.
"""
import importlib
import os

import numpy as np

_APPLIED = {}


def _mmengine_checkpoint_globals():
    """The non-tensor globals that mmengine 0.10.x pickles into a checkpoint it saves."""
    from mmengine.logging.history_buffer import HistoryBuffer
    globs = [HistoryBuffer, np.ndarray, np.dtype]
    try:  # numpy 2 moved the array reconstructor to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct, scalar
    globs += [_reconstruct, scalar]
    # numpy scalars (e.g. the seed, iteration counters) pickle as (dtype class, scalar).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        globs += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return globs


def fix_torch_load_weights_only():
    import torch
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return False  # torch < 2.4 does not default to weights_only
    torch.serialization.add_safe_globals(_mmengine_checkpoint_globals())
    return True


def _hue_shift_uint8(hue_factor):
    """numpy 1's ``np.uint8(hue_factor * 255)``: truncate, then wrap modulo 256."""
    return np.uint8(int(hue_factor * 255) % 256)


def adjust_hue(img, hue_factor, backend=None):
    """mmcv 2.1.0's ``adjust_hue`` with the hue offset computed so numpy 2 accepts it.

    Same arguments, checks and arithmetic as mmcv's (uint8 addition rotates the hue); only the
    offset is wrapped into uint8 before the addition instead of relying on an overflowing cast.
    """
    import cv2
    from mmcv.image.io import imread_backend
    from PIL import Image
    if backend is None:
        backend = imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f"adjust_hue: backend={backend!r} is not supported; accepted: "
                         "'cv2', 'pillow'")
    if not (-0.5 <= hue_factor <= 0.5):
        raise ValueError(f'adjust_hue: hue_factor={hue_factor} is not in [-0.5, 0.5]')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('adjust_hue: img should be a numpy array with 2 or 3 dims, got '
                        f'{type(img).__name__}')
    shift = _hue_shift_uint8(hue_factor)
    if backend == 'pillow':
        if img.dtype != np.uint8:
            raise TypeError(f'adjust_hue: the pillow backend needs uint8, got {img.dtype}')
        pil_image = Image.fromarray(img[..., ::-1], mode='RGB')
        input_mode = pil_image.mode
        if input_mode in {'L', '1', 'I', 'F'}:
            return pil_image
        h, s, v = pil_image.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8)
        with np.errstate(over='ignore'):
            np_h += shift
        pil_image = Image.merge('HSV', (Image.fromarray(np_h, 'L'), s, v)).convert(input_mode)
        return np.array(pil_image, dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv)
    with np.errstate(over='ignore'):
        h = h.astype(np.uint8) + shift
    return cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def fix_numpy2_adjust_hue():
    import mmcv
    import mmcv.image.photometric as photometric
    if int(np.__version__.split('.')[0]) < 2:
        return False
    adjust_hue.__wrapped__ = getattr(photometric.adjust_hue, '__wrapped__',
                                     photometric.adjust_hue)
    photometric.adjust_hue = adjust_hue
    mmcv.adjust_hue = adjust_hue
    mmcv.image.adjust_hue = adjust_hue
    return True


def _torchvision_works():
    try:
        importlib.import_module('torchvision')
        return True
    except Exception:  # missing, or built for another torch (RuntimeError from its ops)
        return False


def fix_torchvision_stub():
    from mmattn.utils import torchvision_stub
    if os.environ.get('MMATTN_TORCHVISION_STUB', 'auto') == '0':
        return False
    if torchvision_stub.is_stub() or _torchvision_works():
        return torchvision_stub.is_stub()
    torchvision_stub.install()
    return True


FIXES = {
    'torch_load_weights_only': fix_torch_load_weights_only,
    'numpy2_adjust_hue': fix_numpy2_adjust_hue,
    'torchvision_stub': fix_torchvision_stub,
}


def apply():
    """Applies every fix once; returns {fix name: whether it is active}.

    ``MMATTN_COMPAT_DISABLE=name1,name2`` leaves the named fixes out (the tests use it to show
    each fix is needed).
    """
    disabled = set(filter(None, os.environ.get('MMATTN_COMPAT_DISABLE', '').split(',')))
    unknown = disabled - set(FIXES)
    if unknown:
        raise ValueError(f'MMATTN_COMPAT_DISABLE names unknown fixes {sorted(unknown)}; '
                         f'accepted: {sorted(FIXES)}')
    for name, fix in FIXES.items():
        if name not in _APPLIED:
            _APPLIED[name] = False if name in disabled else fix()
    return dict(_APPLIED)
