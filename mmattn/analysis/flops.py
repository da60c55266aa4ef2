"""Multiply-adds of one forward pass, counted once for every tool and table.

How (the ledger's "Method" section says the same):

* The model runs on shape-only tensors (``FakeTensorMode``: no memory, no arithmetic, so the
  explicit ``(HW)^2`` attention of a 1333x800 image costs a second) under
  ``torch.utils.flop_counter.FlopCounterMode``, which sits at the dispatcher, below autograd:
  it sees inside custom ``autograd.Function``s, which jit-trace counters (mmengine's
  ``FlopAnalyzer``, :func:`analyzer_macs`) skip as ``prim::PythonOp``. Counted: convolutions,
  ``mm``/``addmm``/``bmm``/``baddbmm`` (einsum and matmul lower to them) and
  ``scaled_dot_product_attention`` (the CPU flash kernel is not in torch's table:
  ``B*heads*L*S*(d + d_v)`` is added). Attention runs on the explicit path, whose matmuls are
  the papers' maths. Not counted: norms, activations, softmax, pooling, bilinear sampling,
  element-wise products.
* What no counter sees (element-wise products that are the operator's maths) comes from the
  operators' declared costs (:mod:`mmattn.models.layers.base`): inside every module for which
  ``is_operator`` holds (the outermost one where they nest), ``module.flops(input_hw)`` per
  image replaces what the counter saw, and both are reported (``analytic``). An operator that
  declares no cost is an error naming it; an operator whose cost depends on the call gets
  what it needs of the call (:data:`CALL_ARGUMENTS`).
"""
import math
import sys

__all__ = ['count_flops', 'in_convention', 'analyzer_macs', 'CALL_ARGUMENTS', 'MAC_OPS',
           'CONV_OPS', 'OperatorCostError']

MAC_OPS = ('mm', 'addmm', 'bmm', 'baddbmm', 'convolution', '_convolution',
           '_scaled_dot_product_flash_attention_for_cpu', '_scaled_dot_product_efficient_attention',
           '_scaled_dot_product_flash_attention', '_scaled_dot_product_cudnn_attention')
CONV_OPS = ('convolution', '_convolution', 'addmm')  # convs and Linear layers with bias (fc)
NORM_OPS = ('native_batch_norm', '_native_batch_norm_legit', '_native_batch_norm_legit_no_training')
POOL_OPS = ('mean', 'avg_pool2d', '_adaptive_avg_pool2d')


class OperatorCostError(ValueError):
    """An operator in the model declares no ``flops(input_hw)``."""


def _mrla_history(args, kwargs):
    # MRLA-base's block t attends over the t - 1 earlier blocks' values of its stage
    return dict(history=len(kwargs.get('values', args[2] if len(args) > 2 else ())))


#: class name -> what of the call an operator's ``flops`` takes besides the input size, for the
#: operators whose cost depends on the call (MRLA-base: the history length of its stage).
CALL_ARGUMENTS = {'MRLABase': _mrla_history}


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    # torch.utils.flop_counter has no entry for the CPU flash kernel: q.k^T and attn.v, in
    # FLOPs (2 per multiply-add) like every entry of its table
    b, h, lq, d = query_shape
    s, dv = key_shape[-2], value_shape[-1]
    return 2 * b * h * lq * s * (d + dv)


def _elements(x_shape, *args, out_shape=None, **kwargs):
    # tallies, not FLOPs: doubled so that halving all counts gives elements
    return 2 * (math.prod(x_shape) if x_shape else 0)


def _custom_mapping():
    import torch
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop}
    for name in NORM_OPS + POOL_OPS:
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = _elements
    return mapping


def _op_name(op):
    # 'aten.convolution' (an OpOverloadPacket) -> 'convolution'
    return str(op).split('.')[1] if str(op).startswith('aten.') else str(op)


def _hooks(model, declared):
    """Forward hooks on the outermost operators (an operator inside another is part of its
    declared cost) adding, per call on an ``(N, C, H, W)`` input, N times the declared cost
    to ``declared[name]``. Operators on token sequences (``(B, N, C)``) have no (H, W): what
    the counter saw is their count (for EAMLP's attention: matmuls alone, seen exactly)."""
    from mmattn.models.layers.base import is_operator
    names = [n for n, m in model.named_modules() if is_operator(m)]
    outer = [n for n in names if not any(n.startswith(o + '.') or (o == '' and n)
                                         for o in names if o != n)]
    modules = dict(model.named_modules())

    def hook(mod, args, kwargs, output, name):
        x = args[0] if args else None
        if getattr(x, 'dim', lambda: 0)() != 4:
            return
        extra = CALL_ARGUMENTS.get(type(mod).__name__, lambda a, k: {})(args, kwargs)
        try:
            cost = int(mod.flops(tuple(x.shape[-2:]), **extra))
        except NotImplementedError:
            raise OperatorCostError(
                f'{type(mod).__name__} ({name or "the model"}) is an operator but declares no '
                'flops(input_hw); see docs/dev/operator_contract.md') from None
        declared[name] = declared.get(name, 0) + cost * x.shape[0]
    return [modules[n].register_forward_hook(
        lambda m, a, k, o, n=n: hook(m, a, k, o, n), with_kwargs=True) for n in outer]


def count_flops(model, input_hw, batch=1, modules=(), in_channels=3):
    """Multiply-adds of one forward of ``model`` on a ``(batch, in_channels, *input_hw)``
    input (an image, or a feature map for a bare operator).

    A model with ``extract_feat`` (an OpenMMLab classifier or segmentor) runs
    ``model(x, mode='tensor')``: backbone, neck and head (decode head) as at inference.
    Returns ``macs`` (the total), ``conv_macs`` (convolutions and biased Linear layers, i.e.
    fc), ``attn_macs`` (the rest: attention matmuls, SDPA and what declared costs add),
    ``norm_elements`` / ``pool_elements`` (inputs of BatchNorm, of average pooling and
    means), ``analytic`` (per operator type: ``seen`` by the counter inside it, ``total``
    declared, ``conv_seen``) and, for the names in ``modules``,
    ``module_macs`` (multiply-adds inside each, declared costs applied).
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from mmattn.models.layers.attention import default_attn_impl
    declared = {}
    hooks = _hooks(model, declared)
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    tensor_mode = hasattr(model, 'extract_feat')
    try:
        with torch.no_grad(), default_attn_impl('explicit'), \
                FakeTensorMode(allow_non_fake_inputs=True):
            x = torch.empty(batch, in_channels, *input_hw)
            with counter:
                model(x, mode='tensor') if tensor_mode else model(x)
    finally:
        for h in hooks:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(model).__name__

    def tally(name, ops):
        key = f'{prefix}.{name}' if name else 'Global'
        return sum(v for op, v in counts.get(key, {}).items() if _op_name(op) in ops) // 2

    conv, macs = tally('', CONV_OPS), tally('', MAC_OPS)
    out = dict(conv_macs=conv, attn_macs=macs - conv, norm_elements=tally('', NORM_OPS),
               pool_elements=tally('', POOL_OPS), analytic={})
    named = dict(model.named_modules())
    deltas = {}  # module name -> what its declared cost adds to the counter's figure
    for name, total in declared.items():
        seen = tally(name, MAC_OPS)
        deltas[name] = total - seen
        _account(out, type(named[name]).__name__, seen, total, tally(name, CONV_OPS))
    out['macs'] = macs + sum(deltas.values())
    out['attn_macs'] += sum(deltas.values())
    if modules:
        out['module_macs'] = {
            m: tally(m, MAC_OPS) + sum(d for n, d in deltas.items()
                                       if n == m or n.startswith(m + '.'))
            for m in modules}
    return out


def _account(out, kind, seen, total, conv_seen):
    entry = out['analytic'].setdefault(kind, dict(seen=0, total=0, conv_seen=0))
    entry['seen'] += seen
    entry['total'] += total
    entry['conv_seen'] += conv_seen
    if total < conv_seen:  # a declared cost below the convolutions the operator runs
        print(f'warning: {kind}: declared {total:,} multiply-adds, but the counter saw '
              f'{conv_seen:,} in its convolutions', file=sys.stderr)


def in_convention(flops, convention):
    """A :func:`count_flops` result in a paper's FLOP convention: ``macs`` (multiply-adds),
    ``2macs``, ``thop`` (multiply-adds + 2 per BatchNorm element + 1 per pooled element, as
    thop counts)."""
    if convention == '2macs':
        return 2 * flops['macs']
    if convention == 'thop':
        return flops['macs'] + 2 * flops['norm_elements'] + flops['pool_elements']
    return flops['macs']


def analyzer_macs(model, input_hw):
    """mmengine's ``FlopAnalyzer`` (jit trace on a real random input) on the same forward as
    :func:`count_flops`: its conv, linear, matmul, bmm, einsum and addmm counts, its BatchNorm
    count apart, and the custom autograd Functions it skipped."""
    import torch
    from mmengine.analysis import FlopAnalyzer

    from mmattn.models.layers.attention import default_attn_impl

    class _Tensor(torch.nn.Module):  # the jit tracer passes positional inputs only

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x, mode='tensor')
    root = _Tensor(model) if hasattr(model, 'extract_feat') else model
    torch.manual_seed(0)
    with torch.no_grad(), default_attn_impl('explicit'):
        fa = FlopAnalyzer(root, (torch.randn(1, 3, *input_hw), ))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        fa.tracer_warnings('none')
        by_op = fa.by_operator()
        skipped = sorted({op for op in fa.unsupported_ops() if 'PythonOp' in op})
    counted = sum(v for k, v in by_op.items()
                  if k in ('conv', 'linear', 'matmul', 'bmm', 'einsum', 'addmm'))
    return dict(macs=counted, norm=by_op.get('batch_norm', 0), skipped=skipped)
