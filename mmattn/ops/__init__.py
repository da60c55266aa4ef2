"""Compiled CPU kernels: ``mmattn._ext``, built from ``mmattn/ops/csrc/`` by ``make install``.

Each kernel is one C++ file in ``csrc/`` that registers its operators in the ``mmattn`` torch
library (``torch.ops.mmattn.<name>``), with a Python wrapper (autograd Function, fallback)
next to the operator that uses it. The build is optional, as mmcv's ops are: ``setup.py``
compiles the extension where torch and a C++ compiler are there (``MMATTN_WITH_EXT=0`` skips
it), and where it is not built (or fails to load: another torch, another CPU) the package
imports and runs with its pure-PyTorch kernels. ``MMATTN_DISABLE_EXT=1`` (read at every call)
makes a built extension look absent, to compare the two or to rule the kernels out.

The shared object is compiled with ``-march=native`` for the machine that builds it, as a
source build (``make install``) runs where it is built; ``MMATTN_EXT_NATIVE=0`` at build time
gives a portable one.
"""
import importlib
import os
from typing import Optional

_STATE = {'loaded': None, 'module': None, 'reason': None}


def _register_fakes():
    """Shape-only ("fake") implementations of the compiled operators, so that code running a
    model on fake or meta tensors (the FLOP counter, shape inference, torch.compile) passes
    through them."""
    import torch
    if not hasattr(torch.library, 'register_fake'):
        return

    def fake(name):
        return torch.library.register_fake(f'mmattn::{name}')

    if hasattr(torch.ops.mmattn, 'rel_attn_fwd'):

        @fake('rel_attn_fwd')
        def _(qc, qr, k, v, rel_h, rel_w, H, W, gemm=0):
            return qc.new_empty(qc.shape[:2] + v.shape[2:]), qc.new_empty(qc.shape[:2])

        @fake('rel_attn_bwd')
        def _(dout, qc, qr, k, v, rel_h, rel_w, out, lse, H, W, gemm=0):
            dqr = qc.new_empty(0) if qr is None else torch.empty_like(qr)
            return (torch.empty_like(qc), dqr, torch.empty_like(k), torch.empty_like(v),
                    torch.empty_like(rel_h), torch.empty_like(rel_w))

    if hasattr(torch.ops.mmattn, 'la_attn_fwd'):

        @fake('la_attn_fwd')
        def _(qkv, offsets, kernel_size, dilation, scale):
            B, H, W, _, m, d = qkv.shape
            return qkv.new_empty(B, H, W, m, d)

        @fake('la_attn_bwd')
        def _(dout, qkv, offsets, kernel_size, dilation, scale):
            return qkv.new_empty(qkv.shape), offsets.new_empty(offsets.shape)


def _load():
    if _STATE['loaded'] is None:
        try:
            _STATE['module'] = importlib.import_module('mmattn._ext')
            _STATE['loaded'] = True
            _register_fakes()
        except (ImportError, OSError) as e:  # not built, or built for another torch
            _STATE['loaded'] = False
            _STATE['reason'] = (f'mmattn._ext is not importable ({type(e).__name__}: {e}); '
                                'run `make install` (or `python setup.py develop`) to build it')
    return _STATE['loaded']


def _disabled() -> bool:
    return os.environ.get('MMATTN_DISABLE_EXT', '0') not in ('', '0')


def ext_available(op: Optional[str] = None) -> bool:
    """Whether the compiled kernels can run (and, given ``op``, that operator exists)."""
    if _disabled():
        return False
    if not _load():
        return False
    if op is None:
        return True
    import torch
    return hasattr(torch.ops.mmattn, op)


def ext_status() -> str:
    """One line saying whether the compiled kernels run here, and if not, why."""
    if _disabled():
        return 'compiled kernels off (MMATTN_DISABLE_EXT is set)'
    if not _load():
        return _STATE['reason']
    return f"compiled kernels loaded (mmattn._ext, {_STATE['module'].isa})"


__all__ = ['ext_available', 'ext_status']
