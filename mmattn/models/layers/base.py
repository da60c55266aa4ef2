"""The contract of a spatial operator: a drop-in replacement for a bottleneck's 3x3 conv.

Every paper's operator that replaces a 3x3 conv subclasses :class:`AttnOperator` and registers
itself with :func:`register_operator` (which also registers it in mmattn's ``MODELS``). Code
that needs "every operator" (the conformance test, the benchmark, the FLOP counter, the
checkpoint check) asks :func:`list_operators` instead of keeping a hand-written list.

What an operator declares:

- ``norm_inside`` (class attribute): True when the operator ends with its own norm, so the
  bottleneck's following norm becomes Identity (official LESA); False when the block's norm
  follows as usual (AA, LA-layer).
- ``flops(input_hw)``: multiply-accumulates of one forward pass for one image whose input is
  ``input_hw`` (H, W), for the analysis layer (mmengine's FlopAnalyzer cannot trace attention
  einsums/custom autograd Functions reliably).

The full contract (signature, sizes, errors, norms) is written in
``docs/dev/operator_contract.md``.
"""
from typing import Dict, Tuple, Type

from mmengine.model import BaseModule

from mmattn.registry import MODELS

__all__ = ['AttnOperator', 'register_operator', 'list_operators', 'is_operator']

_OPERATORS: Dict[str, Type['AttnOperator']] = {}


class AttnOperator(BaseModule):
    """Base class of every 3x3-conv replacement (see the module docstring)."""

    #: True when the operator ends with its own norm (the block's norm2 becomes Identity).
    norm_inside: bool = False

    def flops(self, input_hw: Tuple[int, int]) -> int:
        """Multiply-accumulates of one forward pass for one image of input size ``input_hw``."""
        raise NotImplementedError(f'{type(self).__name__} does not declare flops(input_hw)')


def register_operator(cls=None, *, name=None, force=False):
    """Class decorator: registers ``cls`` in ``MODELS`` and in the operator list."""

    def _register(c):
        if not (isinstance(c, type) and issubclass(c, AttnOperator)):
            raise TypeError(f'register_operator: {c!r} is not a subclass of AttnOperator')
        key = name or c.__name__
        MODELS.register_module(name=key, module=c, force=force)
        _OPERATORS[key] = c
        return c

    return _register(cls) if cls is not None else _register


def list_operators() -> Dict[str, Type[AttnOperator]]:
    """Registered spatial operators by registry name (a copy)."""
    return dict(_OPERATORS)


def is_operator(module) -> bool:
    """Whether ``module`` (an instance) is a registered kind of spatial operator."""
    return isinstance(module, AttnOperator)
