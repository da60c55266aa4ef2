"""The contract of an attention operator: a drop-in replacement for a bottleneck's 3x3 conv.

Every paper's operator that replaces a 3x3 conv subclasses :class:`AttnOperator` and registers
itself with :func:`register_operator` (which also registers it in mmattn's ``MODELS``). Code
that needs "every operator" (the conformance test, the benchmark, the FLOP counter, the
checkpoint check) asks :func:`list_operators` / :func:`is_operator` instead of keeping a
hand-written list or matching module paths.

What a 3x3-conv replacement gets from :class:`AttnOperator`:

- the conv signature normalised once: ``in_channels``, ``out_channels`` (positive ints),
  ``kernel_size``, ``stride``, ``padding``, ``dilation`` (an int or a pair of equal ints:
  every operator here is square) and ``groups`` as ints on ``self``, ``bias`` as a bool;
- the input check: a forward pre-hook refuses anything but ``(N, in_channels, H, W)`` with a
  message naming the operator and the expected shape (N = 0 is accepted: an empty batch gives
  an empty output);
- the argument checks every operator needs (:func:`check_int`, :func:`check_choice`,
  :func:`check_number`, :meth:`AttnOperator.check_accepted`), each naming the operator, the
  argument, its value and what is accepted.

What a 3x3-conv replacement declares:

- ``norm_inside`` (class attribute): True when the operator ends with its own norm, so the
  bottleneck's following norm becomes Identity (official LESA); False when the block's norm
  follows as usual (AA, LA-layer). An operator with ``norm_inside`` lists the norms that end its
  output in ``last_norm_names()`` (zero-initialised under ``zero_init_residual``).
- ``flops(input_hw)``: multiply-accumulates of one forward pass for one image whose input is
  ``input_hw`` (H, W): convolutions and matrix products (on the explicit attention path, whose
  matmuls are the paper's maths) and the element-wise products of attention that replace them;
  not norms, activations, softmax, pooling or bilinear sampling.

Attention modules that are not 3x3-conv replacements (MRLA's per-block modules, External
Attention) subclass :class:`AttnModule` (``flops`` and the argument checks, their own
signature) and register with :func:`register_operator` too: :func:`is_operator` is true for
them (their tensors are operator tensors for the checkpoint check), :func:`list_operators`
lists them only with ``conv_replacements_only=False``.

What each module attends to (issue 18): :func:`record_attention` sets ``record_attention``
on the chosen modules; while it is set, a module stores its maps for its last forward in
``attention_record`` (a dict of detached tensors, computed on the explicit path since the
fused kernels never materialise probabilities), and the context manager collects and clears
them. Off (the default), forwards run as before and store nothing.

The full contract is written in ``docs/dev/operator_contract.md``.
"""
import contextlib
import numbers
from typing import Dict, Iterable, Optional, Sequence, Tuple, Type

from mmengine.model import BaseModule

from mmattn.registry import MODELS

__all__ = [
    'AttnModule', 'AttnOperator', 'register_operator', 'list_operators', 'is_operator',
    'record_attention', 'attention_modules',
    'check_int', 'check_choice', 'check_number', 'conv_int', 'to_hw'
]

_OPERATORS: Dict[str, Type['AttnModule']] = {}


# ---------------------------------------------------------------------------- argument checks
def check_int(owner: str, name: str, value, minimum: int = 1) -> int:
    """An int >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f'{owner}: {name}={value!r} must be an int')
    if value < minimum:
        accepted = 'a positive int' if minimum == 1 else f'an int >= {minimum}'
        raise ValueError(f'{owner}: {name}={value!r} must be {accepted}')
    return int(value)


def check_choice(owner: str, name: str, value, choices: Sequence):
    if value not in choices:
        raise ValueError(f'{owner}: {name}={value!r} is not one of {tuple(choices)}')
    return value


def check_number(owner: str, name: str, value, low=None, high=None, low_open=False,
                 high_open=False) -> float:
    """A real number in the interval ``low..high`` (open at the ends marked open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{owner}: {name}={value!r} must be a number')
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = '(-inf' if low is None else ('(' if low_open else '[') + f'{low}'
        hi = 'inf)' if high is None else f'{high}' + (')' if high_open else ']')
        raise ValueError(f'{owner}: {name}={value!r} is out of range; accepted {lo}, {hi}')
    return value


def conv_int(owner: str, name: str, value, minimum: int) -> int:
    """A conv argument given as an int or a pair of equal ints (square operators) -> int."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f'{owner}: {name}={value!r} must be an int or a pair of equal '
                             'ints (the operator is square)')
        value = value[0]
    return check_int(owner, name, value, minimum)


def to_hw(input_hw) -> Tuple[int, int]:
    """``(H, W)`` from an int or a pair, for ``flops``."""
    hw = (input_hw, input_hw) if isinstance(input_hw, numbers.Integral) else tuple(input_hw)
    if len(hw) != 2 or not all(isinstance(s, numbers.Integral) and s >= 1 for s in hw):
        raise ValueError(f'input_hw={input_hw!r} must be a positive int or a pair (H, W)')
    return int(hw[0]), int(hw[1])


# ---------------------------------------------------------------------------- base classes
class AttnModule(BaseModule):
    """Base class of every attention module a paper adds (see the module docstring)."""

    #: set by :func:`record_attention`: the next forwards store their maps in
    #: ``attention_record``; a class attribute, so a module that never records pays one
    #: attribute read per forward
    record_attention: bool = False
    attention_record: Optional[dict] = None
    #: the keys a recording forward stores (empty: the module records nothing itself)
    attention_maps: Tuple[str, ...] = ()

    def _record(self, **maps) -> None:
        """Keep ``maps`` (tensors detached, other values as given) as this forward's record."""
        self.attention_record = {
            k: v.detach() if hasattr(v, 'detach') else v for k, v in maps.items()}

    def flops(self, input_hw) -> int:
        """Multiply-accumulates of one forward pass for one image of input size ``input_hw``."""
        raise NotImplementedError(f'{type(self).__name__} does not declare flops(input_hw)')


def _check_input(module: 'AttnOperator', args):
    # a forward pre-hook, so every operator (and a user's) gets the same check and message;
    # N = 0 passes: an empty batch gives an empty output
    x = args[0] if args else None
    shape = tuple(getattr(x, 'shape', ()))
    if len(shape) != 4 or shape[1] != module.in_channels:
        raise ValueError(f'{type(module).__name__}: expected input (N, {module.in_channels}, H, '
                         f'W), got {shape if x is not None else None}')


class AttnOperator(AttnModule):
    """Base class of every 3x3-conv replacement: the conv signature, normalised once.

    Subclasses call ``super().__init__(in_channels, out_channels, kernel_size, stride,
    padding, dilation, groups, bias, init_cfg=init_cfg)`` first and then read the ints from
    ``self``; what a subclass does not support it refuses with :meth:`check_accepted`.
    """

    #: True when the operator ends with its own norm (the block's norm2 becomes Identity).
    norm_inside: bool = False

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size=3,
                 stride=1,
                 padding=1,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = False,
                 *,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        owner = type(self).__name__
        self.in_channels = check_int(owner, 'in_channels', in_channels, 1)
        self.out_channels = check_int(owner, 'out_channels', out_channels, 1)
        self.kernel_size = conv_int(owner, 'kernel_size', kernel_size, 1)
        self.stride = conv_int(owner, 'stride', stride, 1)
        self.padding = conv_int(owner, 'padding', padding, 0)
        self.dilation = conv_int(owner, 'dilation', dilation, 1)
        self.groups = check_int(owner, 'groups', groups, 1)
        if not isinstance(bias, bool):
            raise TypeError(f'{owner}: bias={bias!r} must be a bool')
        self.register_forward_pre_hook(_check_input)

    def check_accepted(self, name: str, accepted: Sequence, value=None):
        """Refuse a conv argument the operator does not support (``self.<name>`` by default)."""
        value = getattr(self, name) if value is None else value
        if value not in accepted:
            raise ValueError(f'{type(self).__name__}: {name}={value!r} is not supported '
                             f'(accepted: {", ".join(map(repr, accepted))})')

    def out_hw(self, input_hw) -> Tuple[int, int]:
        """Output size of the 3x3 conv this replaces: ``ceil(H / stride)`` (centred padding)."""
        h, w = to_hw(input_hw)
        return -(-h // self.stride), -(-w // self.stride)

    def last_norm_names(self) -> Tuple[str, ...]:
        """Norms ending every output path (``norm_inside`` operators): zero-initialised when
        the backbone's ``zero_init_residual`` would zero the norm the operator replaces."""
        if self.norm_inside:
            raise NotImplementedError(f'{type(self).__name__} has norm_inside=True and must '
                                      'declare last_norm_names()')
        return ()


# ---------------------------------------------------------------------------- registry
def register_operator(cls=None, *, name=None, force=False):
    """Class decorator: registers ``cls`` in ``MODELS`` and in the operator list."""

    def _register(c):
        if not (isinstance(c, type) and issubclass(c, AttnModule)):
            raise TypeError(f'register_operator: {c!r} is not a subclass of AttnOperator '
                            '(or AttnModule)')
        key = name or c.__name__
        MODELS.register_module(name=key, module=c, force=force)
        _OPERATORS[key] = c
        return c

    return _register(cls) if cls is not None else _register


def list_operators(conv_replacements_only: bool = True) -> Dict[str, Type[AttnModule]]:
    """Registered operators by registry name (a copy): the 3x3-conv replacements
    (:class:`AttnOperator`), or every registered attention module."""
    return {k: c for k, c in _OPERATORS.items()
            if not conv_replacements_only or issubclass(c, AttnOperator)}


def is_operator(module) -> bool:
    """Whether ``module`` (an instance) is a paper's attention module (a 3x3-conv replacement
    or a block-level module such as MRLA's): its tensors are operator tensors."""
    return isinstance(module, AttnModule)


# ---------------------------------------------------------------------------- attention maps
def attention_modules(model) -> Dict[str, AttnModule]:
    """Every attention module of ``model`` by its qualified name (``named_modules`` order)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, AttnModule)}


@contextlib.contextmanager
def record_attention(model, names: Optional[Iterable[str]] = None):
    """Record what the attention modules of ``model`` attend to during the ``with`` block.

    ``names``: qualified module names (as ``model.named_modules()``; default every
    :class:`AttnModule`). Yields a dict, filled when the block exits, from module name to the
    record of that module's last forward (modules that did not run are absent). What each
    operator records is listed in ``docs/dev/operator_contract.md`` ("Attention maps")::

        with record_attention(backbone, ['layer3.0.conv2']) as maps:
            backbone(x)
        maps['layer3.0.conv2']['probs']  # (B, heads, HW, HW), rows sum to 1

    A recorded forward computes its maps on the explicit path (the fused kernels never
    materialise the probabilities): slower, ``(HW)^2`` memory per head for the global
    operators, and its output equal to the fused one within float rounding.
    """
    found = attention_modules(model)
    if names is None:
        chosen = found
    else:
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in found]
        if unknown:
            some = ', '.join(list(found)[:5]) + (', ...' if len(found) > 5 else '')
            raise ValueError(f'record_attention: {unknown[0]!r} is not an attention module of '
                             f'the model (accepted: {some or "none: the model has none"}; '
                             'list them with mmattn.models.layers.base.attention_modules)')
        chosen = {n: found[n] for n in names}
    before = {n: m.__dict__.get('record_attention') for n, m in chosen.items()}
    for m in chosen.values():
        m.record_attention, m.attention_record = True, None
    records: Dict[str, dict] = {}
    try:
        yield records
    finally:
        for n, m in chosen.items():
            if m.attention_record is not None:
                records[n] = m.attention_record
            m.attention_record = None
            if before[n] is None:
                del m.record_attention  # back to the class default
            else:
                m.record_attention = before[n]
