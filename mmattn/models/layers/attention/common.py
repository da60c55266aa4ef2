"""Precision and device helpers shared by the attention paths (and the operators)."""
import contextlib

import torch
from torch import Tensor, nn


def autocast_off(device_type: str):
    """``torch.autocast(device_type, enabled=False)``, or nothing for a device autocast does
    not know (``meta``: shape-only runs, how large models are built before loading)."""
    try:
        return torch.autocast(device_type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


def outside_autocast(fn, x: Tensor, dtype: torch.dtype) -> Tensor:
    """``fn(x.to(dtype))`` with autocast off when autocast is on for ``x``'s device, else ``fn(x)``.

    For the projections that form attention logits (pass the weights' dtype): at large
    activations the logits reach ~1e4, and a bfloat16/float16 rounding of q or k (2^-9 relative)
    moves them by tens, which changes the softmax and every gradient through it (issue 16:
    relative errors above 1 against float64). Without autocast nothing changes (no copy).
    """
    try:
        on = torch.is_autocast_enabled(x.device.type)
    except RuntimeError:  # meta and other devices autocast does not know
        on = False
    if not on:
        return fn(x)
    with torch.autocast(x.device.type, enabled=False):
        return fn(x.to(dtype))


def norm_in_own_dtype(norm: nn.Module, x: Tensor) -> Tensor:
    """``norm(x)`` in the norm's parameter dtype, cast back to ``x``'s: the logits run in at
    least fp32 while a model moved with ``.to(torch.bfloat16)`` keeps bf16 norms (CPU
    BatchNorm refuses mixed dtypes)."""
    ref = next((t for t in (*norm.parameters(), *norm.buffers()) if t.is_floating_point()),
               None)
    if ref is None or ref.dtype == x.dtype:
        return norm(x)
    return norm(x.to(ref.dtype)).to(x.dtype)


def tracing() -> bool:
    """Whether the forward is being traced rather than run: ``torch.compile``/``torch.export``
    (the dynamo ONNX exporter), ``torch.jit.trace`` or the TorchScript ONNX exporter. The
    operators then take plain-tensor paths: no custom autograd Function writing into
    preallocated buffers (the TorchScript exporter records such writes wrongly or fails), no
    logging, no thread-count query (a graph break, and it would bake this machine's thread
    count into the trace)."""
    return (torch.compiler.is_compiling() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())


def shape_only(x: Tensor) -> bool:
    """Whether ``x`` carries shapes but no data (a ``meta`` tensor, or a fake tensor of
    ``FakeTensorMode``: the FLOP counter, shape inference): operators then take their
    reference paths, whose ops the counters know."""
    if x.device.type == 'meta':
        return True
    try:
        from torch._subclasses.fake_tensor import is_fake
    except ImportError:  # pragma: no cover (older torch)
        return False
    return is_fake(x)
