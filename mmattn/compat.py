"""Fixes that let the last OpenMMLab 3.x releases run on torch >= 2.6 and numpy 2.

Applied once when :mod:`mmattn` is imported; nothing in site-packages is edited. Each fix names
the error it prevents and has a test in ``tests/test_compat.py`` that fails without it.

1. ``torch_load_weights_only``: torch >= 2.6 loads with ``weights_only=True`` by default and
   mmengine 0.10.7 does not pass the argument, so resuming fails with ``Unsupported global:
   mmengine.logging.history_buffer.HistoryBuffer``. mmengine also pickles the HistoryBuffer's
   statistic *functions*, which torch's protocol-2 pickle writes through ``builtins.getattr``;
   allow-listing ``getattr`` would defeat ``weights_only``. Fix: HistoryBuffer pickles the
   names of its statistic methods instead (and reads either form); the globals left in an
   mmengine checkpoint (HistoryBuffer, numpy arrays, dtypes and scalars) are allow-listed.
   A checkpoint that still holds other globals (e.g. written by stock mmengine) fails with an
   error naming them; ``MMATTN_TRUST_CHECKPOINTS=1`` loads it with ``weights_only=False``.
2. ``numpy2_adjust_hue``: mmcv 2.1.0's ``adjust_hue`` adds a negative hue offset to a uint8 hue
   channel; numpy 2 raises ``OverflowError: Python integer -N out of bounds for uint8``
   (numpy 1 wrapped silently). Fix: compute the shift in int16 and wrap it modulo 180.
3. ``cpu_distributed``: mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device``
   unconditionally, which raises ``AttributeError: module 'torch._C' has no attribute
   '_cuda_setDevice'`` on a CPU build, so ``dist_train.sh`` cannot start without a GPU. Fix: on a
   machine without CUDA, initialise the process group (gloo) without touching CUDA.
4. ``torchvision_stub``: mmpretrain imports torchvision at import; where no torchvision works
   (CPU torch from PyPI) a documented stand-in is installed, see
   :mod:`mmattn.utils.torchvision_stub`. A working torchvision is never replaced.
5. ``onedl_package_names``: on the OneDL continuation of the stack (``onedl-mmsegmentation``
   etc., same import names) mmengine looks an ``mmseg::`` base config up under the PyPI name
   ``mmsegmentation`` and raises ``ModuleNotFoundError: mmsegmentation is not installed``.
   Fix: where a scope's module imports but its OpenMMLab distribution is absent and the
   ``onedl-`` one is present, mmengine's scope -> package table names the OneDL distribution.

Each fix checks that its failure can happen here and stays inactive otherwise (``apply()``
says which are active): OneDL's mmcv already fixes 2, and its mmengine loads checkpoints with
a ``weights_only=False`` fallback (1 stays active there: it keeps loading safe).
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


def _patch_history_buffer():
    from mmengine.logging.history_buffer import HistoryBuffer
    if getattr(HistoryBuffer, '_mmattn_pickles_names', False):
        return

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
        state['statistics_method_names'] = sorted(self._statistics_methods)
        return state

    def __setstate__(self, state):
        state = dict(state)
        functions = state.pop('statistics_methods', {})  # stock mmengine's form
        names = state.pop('statistics_method_names', [])
        self._set_default_statistics()
        self._statistics_methods.update(functions)
        missing = [n for n in names if n not in self._statistics_methods]
        if missing:
            import warnings
            warnings.warn(f'HistoryBuffer: statistic methods {missing} were registered when '
                          'the checkpoint was written but are not registered now')
        self.__dict__.update(state)

    HistoryBuffer.__getstate__ = __getstate__
    HistoryBuffer.__setstate__ = __setstate__
    HistoryBuffer._mmattn_pickles_names = True


def fix_torch_load_weights_only():
    import torch
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return False  # torch < 2.4 does not default to weights_only
    from mmattn.utils.checkpoint import register_loaders
    torch.serialization.add_safe_globals(_mmengine_checkpoint_globals())
    _patch_history_buffer()
    # local files through mmattn's reader; torchvision:// without torchvision (the stand-in)
    register_loaders()
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


def _adjust_hue_overflows(original):
    try:
        original(np.zeros((2, 2, 3), np.uint8) + 100, -0.2, backend='cv2')
        return False
    except OverflowError:
        return True


def fix_numpy2_adjust_hue():
    import mmcv
    import mmcv.image.photometric as photometric
    original = getattr(photometric.adjust_hue, '__wrapped__', photometric.adjust_hue)
    if not _adjust_hue_overflows(original):
        return False  # numpy 1, or an mmcv that computes the shift safely (onedl-mmcv)
    adjust_hue.__wrapped__ = original
    photometric.adjust_hue = adjust_hue
    mmcv.adjust_hue = adjust_hue
    mmcv.image.adjust_hue = adjust_hue
    return True


def fix_cpu_distributed():
    import torch
    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils
    if torch.cuda.is_available():
        return False
    original = getattr(dist_utils._init_dist_pytorch, '__wrapped__',
                       dist_utils._init_dist_pytorch)

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            backend = 'gloo'  # NCCL needs GPUs
        torch_dist.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch.__wrapped__ = original
    dist_utils._init_dist_pytorch = _init_dist_pytorch
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


def _distribution_installed(name):
    from importlib.metadata import PackageNotFoundError, version
    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False


def fix_onedl_package_names():
    import importlib.util

    from mmengine.config.utils import MODULE2PACKAGE
    renamed = False
    for scope, package in list(MODULE2PACKAGE.items()):
        onedl = 'onedl-' + package
        if (importlib.util.find_spec(scope) is not None and not _distribution_installed(package)
                and _distribution_installed(onedl)):
            MODULE2PACKAGE[scope] = onedl  # the table mmengine's config and registry read
            renamed = True
    return renamed


FIXES = {
    'torch_load_weights_only': fix_torch_load_weights_only,
    'numpy2_adjust_hue': fix_numpy2_adjust_hue,
    'cpu_distributed': fix_cpu_distributed,
    'torchvision_stub': fix_torchvision_stub,
    'onedl_package_names': fix_onedl_package_names,
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
