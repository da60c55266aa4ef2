"""The prepared GPU check of the attention kernels (issue 17), one run of a few minutes.

Sections (``--sections``, default all, in this order):

- ``exactness``: the fused kernels (``'flex'``, ``'chunked'``) against the explicit path,
  output and every gradient (q, k, v, both tables, the logit norm's weight), in
  fp32 and fp64: LESA's layout (8 heads, q/k 16, v 32, BatchNorm over the stacked logits in
  training mode, folded into per-head scales) and AA's stage-2 layout (8 heads, q/k 20, v 2,
  ``q`` scaled by ``dkh ** -0.5``, no norm). Sizes small enough for the explicit ``(HW)^2``.
- ``kernels``: forward+backward of one attention core at the table sizes of the issue
  (:data:`KERNEL_CASES`, batch 1, 8 heads): ``'flex'`` (fp32 work dtype, as every fused
  kernel), ``'chunked'``, and plain SDPA without position terms as the floor: bf16 on the
  FlashAttention backend and fp32 on the memory-efficient one (q/k/v zero-padded to one head
  dim, a multiple of 8, which those backends need). Medians of CUDA-event times after warm-up;
  the first call (compile included) is reported apart; peak memory per call.
- ``backbones``: LESA-R50 and AA-R50 (the detection backbones of
  ``configs/_base_/backbones/``, detection settings: stem and stage 1 frozen, BatchNorm in
  eval mode, four maps out) against ResNet-50, forward+backward at 1024x1024 under bf16
  autocast, batch 1 (batch 2 if the time budget allows): median time, ratio to ResNet-50, peak
  memory; LESA/AA on the default kernel (``'flex'`` on CUDA) and on ``'chunked'``.

Every section writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out`` as it finishes (a
run stopped at its time limit keeps what it measured). A case that fails records its error
and the run goes on. ``--quick`` runs tiny sizes on the CPU in seconds (the test's mode); the
numbers then mean nothing, only the structure.

The backbones are built from mmattn's classes with mmengine's registry: no mmdet, and with
``mmcv-lite`` (no compiled ops) where the tool's stand-in for ``mmcv.ops`` is installed first
(``tools/analysis_tools/gpu_check.py``; DEVELOPERS.md lists the wheels to carry).
"""
import copy
import json
import math
import os
import os.path as osp
import platform
import statistics
import time
import traceback

import torch
import torch.nn.functional as F
from torch import nn

from .cli import repo_root

SECTIONS = ('exactness', 'kernels', 'backbones')
# (label, H, W, q/k dim, v dim) at 8 heads, batch 1: the sizes the issue names
KERNEL_CASES = [
    ('LESA stage 3, 800x1344', 50, 84, 16, 32),
    ('LESA stage 3, 1024x1024', 64, 64, 16, 32),
    ('LESA stage 4 width, 50x84', 50, 84, 32, 64),
    ('stride 8, 800x1344, 16/32', 100, 167, 16, 32),
    ('AA stage 2, 800x1344', 100, 167, 20, 2),
]
QUICK_KERNEL_CASES = [('quick LESA', 4, 6, 16, 32), ('quick AA', 3, 5, 20, 2)]
# (label, layout, H, W, batch); layouts below
EXACT_CASES = [('LESA + BatchNorm', 'lesa', 16, 24, 2), ('LESA + BatchNorm', 'lesa', 20, 13, 1),
               ('AA stage 2', 'aa', 16, 24, 2), ('AA stage 2', 'aa', 13, 20, 1)]
QUICK_EXACT_CASES = [('LESA + BatchNorm', 'lesa', 3, 5, 2), ('AA stage 2', 'aa', 4, 3, 2)]
LAYOUTS = {'lesa': dict(heads=8, d=16, e=32, norm=True, scale=False),
           'aa': dict(heads=8, d=20, e=2, norm=False, scale=True)}
# name: (label, backbone file under configs/_base_/backbones or None for ResNet-50)
BACKBONES = {'resnet50': ('ResNet-50', None), 'lesa_r50': ('LESA-R50', 'lesa-r50.py'),
             'aa_r50': ('AA-R50', 'aa-r50.py')}
# mmdet's ResNet-50 of its detection configs, with the benchmark's detection settings
DET_BACKBONE = dict(type='AttnResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                    frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True),
                    norm_eval=True, style='pytorch')
# relative error bounds of a passing comparison (max |a - b| / max |b|)
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}


# ---------------------------------------------------------------------------------- helpers
class Timer:
    """First-call wall time (compile included) and the median of timed calls."""

    def __init__(self, device):
        self.cuda = device.type == 'cuda'

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def run(self, fn, warmup, repeat):
        self.sync()
        t = time.perf_counter()
        fn()
        self.sync()
        first = time.perf_counter() - t
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeat):
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                fn()
                times.append(1e3 * (time.perf_counter() - t))
        return dict(first_s=round(first, 3), median_ms=round(statistics.median(times), 3),
                    times_ms=[round(x, 3) for x in times])

    def peak(self, fn):
        """Peak bytes allocated by ``fn()`` above the allocation before (CUDA), else None."""
        if not self.cuda:
            fn()
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before


def _gib(b):
    return None if b is None else round(b / 2**30, 3)


def _error(e):
    return f'{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ""}'


def env_info(device):
    from mmattn.models.layers.attention import auto_kernel, flex_status
    info = dict(torch=torch.__version__, python=platform.python_version(), device=str(device),
                cuda=torch.version.cuda, flex_status=flex_status(device) or 'available',
                auto_kernel=auto_kernel(device),
                tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    try:
        import triton
        info['triton'] = triton.__version__
    except ImportError:
        info['triton'] = None
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['capability'] = '.'.join(map(str, torch.cuda.get_device_capability(device)))
    else:
        info['gpu'] = None
    try:
        from mmattn.ops import ext_available
        info['ext'] = ext_available()
    except Exception as e:  # noqa: BLE001  (informative only)
        info['ext'] = _error(e)
    return info


# ------------------------------------------------------------------------------- exactness
def _exact_inputs(layout, H, W, B, dtype, device, seed=0):
    lay = LAYOUTS[layout]
    g = torch.Generator().manual_seed(seed)
    N, d, e, L = lay['heads'], lay['d'], lay['e'], H * W

    def r(*shape, s=1.0):
        return (s * torch.randn(*shape, generator=g, dtype=torch.float64)).to(device, dtype)

    s = d**-0.5 if lay['scale'] else 1.0
    q, k, v = r(B, N, L, d, s=s), r(B, N, L, d), r(B, N, L, e)
    rel_h, rel_w = r(2 * H - 1, d, s=0.5), r(2 * W - 1, d, s=0.5)
    norm = None
    if lay['norm']:
        norm = nn.BatchNorm2d(2 * N).to(device, dtype).train()
        with torch.no_grad():
            norm.weight.copy_(torch.linspace(0.5, 1.5, 2 * N))
            norm.bias.copy_(torch.linspace(-0.2, 0.2, 2 * N))
    return [q, k, v, rel_h, rel_w], norm


def _attention_and_grads(inputs, norm, size, grads, **kw):
    from mmattn.models.layers.attention import relative_attention
    leaves = [t.detach().clone().requires_grad_(grads) for t in inputs]
    norm = copy.deepcopy(norm)
    with torch.set_grad_enabled(grads):
        out = relative_attention(*leaves, size, logit_norm=norm, **kw)
    if not grads:
        return out.detach(), {}
    w = torch.linspace(-1, 1, out.numel(), device=out.device, dtype=out.dtype).view_as(out)
    # the norm's bias is left out: its shifts cancel in the softmax (gradient 0 on both paths,
    # up to rounding on the explicit one)
    params = [] if norm is None else [norm.weight]
    gs = torch.autograd.grad((out * w).sum(), leaves + params)
    names = ['q', 'k', 'v', 'rel_h', 'rel_w'] + (['norm.weight'] if params else [])
    return out.detach(), dict(zip(names, gs))


def _rel_err(a, b):
    scale = b.abs().max().item()
    err = (a.to(b.dtype) - b).abs().max().item()
    return err / scale if scale > 0 else err


def check_exactness(device, quick, kernels=('flex', 'chunked')):
    rows = []
    cases = QUICK_EXACT_CASES if quick else EXACT_CASES
    dtypes = [torch.float32, torch.float64]
    for label, layout, H, W, B in cases:
        for dtype in dtypes:
            inputs, norm = _exact_inputs(layout, H, W, B, dtype, device)
            # FlexAttention has no backward on CPU: there flex is checked forward only
            grads_for = {k: device.type == 'cuda' or k != 'flex' for k in kernels}
            ref = {}
            for g in sorted(set(grads_for.values())):
                ref[g] = _attention_and_grads(inputs, norm, (H, W), g, impl='explicit')
            for kernel in kernels:
                row = dict(case=label, layout=layout, size=f'{H}x{W}', batch=B,
                           dtype=str(dtype).replace('torch.', ''), kernel=kernel,
                           grads=grads_for[kernel])
                try:
                    out, gs = _attention_and_grads(inputs, norm, (H, W), grads_for[kernel],
                                                   impl='fused', kernel=kernel)
                    r_out, r_gs = ref[grads_for[kernel]]
                    row['out_rel_err'] = _rel_err(out, r_out)
                    row['grad_rel_err'] = {n: _rel_err(gs[n], r_gs[n]) for n in gs}
                    worst = max([row['out_rel_err'], *row['grad_rel_err'].values()])
                    row['max_rel_err'] = worst
                    row['pass'] = bool(worst <= TOLERANCE[dtype])
                except Exception as e:  # noqa: BLE001  (recorded; the run goes on)
                    row['error'] = _error(e)
                    row['pass'] = False
                rows.append(row)
                print(f"[exactness] {label} {H}x{W}/{B} {row['dtype']} {kernel}: "
                      + (f"max rel err {row['max_rel_err']:.2e}" if 'max_rel_err' in row
                         else row['error']), flush=True)
    return rows


# --------------------------------------------------------------------------------- kernels
def _pad_dim(d, e):
    return 8 * math.ceil(max(d, e) / 8)


def bench_kernels(device, quick, warmup, repeat):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from mmattn.models.layers.attention import (chunked_relative_attention,
                                                flex_relative_attention)
    timer = Timer(device)
    rows = []
    N, B = 8, 1
    for label, H, W, d, e in QUICK_KERNEL_CASES if quick else KERNEL_CASES:
        L = H * W
        g = torch.Generator().manual_seed(0)

        def r(*shape, s=1.0):
            return (s * torch.randn(*shape, generator=g)).to(device)

        q, k, v = r(B, N, L, d, s=d**-0.5), r(B, N, L, d), r(B, N, L, e)
        rel_h, rel_w = r(2 * H - 1, d, s=0.5), r(2 * W - 1, d, s=0.5)
        m = _pad_dim(d, e)
        steps = {}
        leaves = [t.requires_grad_() for t in (q, k, v, rel_h, rel_w)]

        def fused(fn):
            def step():
                for t in leaves:
                    t.grad = None
                out = fn(q, q, k, v, rel_h, rel_w, (H, W))
                out.backward(torch.ones_like(out))
            return step

        steps['flex fp32'] = fused(flex_relative_attention) if device.type == 'cuda' else None
        steps['chunked fp32'] = fused(chunked_relative_attention)

        def sdpa(dtype, backend):
            qs, ks, vs = (F.pad(t.detach(), (0, m - t.shape[-1])).to(dtype).requires_grad_()
                          for t in (q, k, v))

            def step():
                for t in (qs, ks, vs):
                    t.grad = None
                with sdpa_kernel([backend]):
                    out = F.scaled_dot_product_attention(qs, ks, vs, scale=1.0)
                out.backward(torch.ones_like(out))
            return step

        steps['sdpa flash bf16'] = sdpa(torch.bfloat16, SDPBackend.FLASH_ATTENTION)
        steps['sdpa efficient fp32'] = sdpa(
            torch.float32, SDPBackend.EFFICIENT_ATTENTION if device.type == 'cuda'
            else SDPBackend.MATH)
        row = dict(case=label, tokens=f'{H}x{W}', qk_dim=d, v_dim=e, heads=N, batch=B,
                   sdpa_head_dim=m, kernels={})
        for name, step in steps.items():
            if step is None:
                row['kernels'][name] = dict(skipped='no FlexAttention backward on CPU')
                continue
            try:
                res = timer.run(step, warmup, repeat)
                res['peak_gib'] = _gib(timer.peak(step))
            except Exception as e:  # noqa: BLE001
                res = dict(error=_error(e))
            row['kernels'][name] = res
            print(f'[kernels] {label} {name}: ' + (
                f"{res['median_ms']:.3f} ms (first call {res['first_s']:.1f} s)"
                if 'median_ms' in res else res['error']), flush=True)
        ks_ = row['kernels']
        for num in ('flex fp32', 'chunked fp32'):
            for den in ('sdpa flash bf16', 'sdpa efficient fp32'):
                a, b = ks_.get(num, {}).get('median_ms'), ks_.get(den, {}).get('median_ms')
                if a and b:
                    row.setdefault('ratios', {})[f'{num} / {den}'] = round(a / b, 2)
        rows.append(row)
        for t in leaves:
            t.grad = None
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------------------------- backbones
def build_backbone(name):
    """A detection backbone of :data:`BACKBONES` (train mode, nothing loaded), through mmengine's
    registry (mmattn's classes; no mmdet)."""
    from mmengine.config import Config

    from mmattn.registry import MODELS
    cfg = copy.deepcopy(DET_BACKBONE)
    path = BACKBONES[name][1]
    if path is not None:
        bb = Config.fromfile(osp.join(repo_root(), 'configs', '_base_', 'backbones',
                                      path)).backbone.to_dict()
        bb.pop('init_cfg', None)
        cfg.update(bb)
    model = MODELS.build(cfg)
    model.train()
    return model


def bench_backbones(device, quick, size, batches, warmup, repeat, deadline):
    from mmattn.models.layers.attention import default_attn_kernel
    timer = Timer(device)
    rows = []
    runs = [(b, n, kern) for b in batches for n in BACKBONES
            for kern in (('auto', ) if n == 'resnet50' else ('auto', 'chunked'))]
    for i, (batch, name, kernel) in enumerate(runs):
        optional = batch != batches[0] or kernel != 'auto'
        row = dict(backbone=BACKBONES[name][0], name=name, size=f'{size}x{size}', batch=batch,
                   kernel=kernel, autocast='bf16')
        if optional and time.monotonic() > deadline:
            row['skipped'] = 'time budget'
            rows.append(row)
            continue
        model = x = None
        try:
            model = build_backbone(name).to(device)
            g = torch.Generator().manual_seed(0)
            x = torch.randn(batch, 3, size, size, generator=g).to(device)

            def step():
                for p in model.parameters():
                    p.grad = None
                with torch.autocast(device.type, dtype=torch.bfloat16), \
                        default_attn_kernel(kernel):
                    outs = model(x)
                sum(o.float().mean() for o in outs).backward()

            row.update(timer.run(step, warmup, repeat))
            row['peak_gib'] = _gib(timer.peak(step))
        except Exception as e:  # noqa: BLE001
            row['error'] = _error(e)
        rows.append(row)
        print(f'[backbones] {row["backbone"]} {size}/{batch} [{kernel}]: ' + (
            f"{row['median_ms']:.1f} ms, peak {row['peak_gib']} GiB (first {row['first_s']} s)"
            if 'median_ms' in row else row.get('error', '')), flush=True)
        del model, x
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    base = {r['batch']: r.get('median_ms') for r in rows if r['name'] == 'resnet50'}
    base_mem = {r['batch']: r.get('peak_gib') for r in rows if r['name'] == 'resnet50'}
    for r in rows:
        if r.get('median_ms') and base.get(r['batch']):
            r['time_ratio'] = round(r['median_ms'] / base[r['batch']], 2)
        if r.get('peak_gib') and base_mem.get(r['batch']):
            r['memory_ratio'] = round(r['peak_gib'] / base_mem[r['batch']], 2)
    return rows


# ---------------------------------------------------------------------------------- report
def _fmt(x, spec='.3g'):
    return '-' if x is None else format(x, spec) if isinstance(x, float) else str(x)


def markdown(result):
    env = result['env']
    lines = [f"# GPU check ({result['command']})", '',
             f"GPU: {env.get('gpu')}; torch {env['torch']} (CUDA {env.get('cuda')}, triton "
             f"{env.get('triton')}); Python {env['python']}; FlexAttention: "
             f"{env['flex_status']}; auto kernel: {env['auto_kernel']}; elapsed "
             f"{result.get('elapsed_s')} s.", '']
    ex = result.get('exactness')
    if ex:
        lines += ['## Exactness against the explicit path (max relative error)', '',
                  '| case | size/batch | dtype | kernel | output | worst gradient | pass |',
                  '|---|---|---|---|---:|---:|---|']
        for r in ex:
            worst_g = max(r['grad_rel_err'].values()) if r.get('grad_rel_err') else None
            lines.append(f"| {r['case']} | {r['size']}/{r['batch']} | {r['dtype']} | "
                         f"{r['kernel']}{'' if r['grads'] else ' (fwd only)'} | "
                         f"{_fmt(r.get('out_rel_err'), '.2e')} | {_fmt(worst_g, '.2e')} | "
                         f"{'yes' if r['pass'] else 'NO ' + r.get('error', '')} |")
        lines.append('')
    kr = result.get('kernels')
    if kr:
        names = list(kr[0]['kernels'])
        lines += ['## One attention core, forward+backward (median ms; batch 1, 8 heads)', '',
                  '| case | tokens | q/k, v | ' + ' | '.join(names)
                  + ' | flex / flash bf16 | flex / efficient fp32 |',
                  '|---|---|---|' + '---:|' * (len(names) + 2)]
        for r in kr:
            cells = []
            for n in names:
                k = r['kernels'][n]
                cells.append(_fmt(k.get('median_ms')) if 'median_ms' in k else
                             ('error' if 'error' in k else 'skipped'))
            rat = r.get('ratios', {})
            lines.append(f"| {r['case']} | {r['tokens']} | {r['qk_dim']}, {r['v_dim']} | "
                         + ' | '.join(cells) + ' | '
                         + f"{_fmt(rat.get('flex fp32 / sdpa flash bf16'))} | "
                         f"{_fmt(rat.get('flex fp32 / sdpa efficient fp32'))} |")
        lines += ['', 'First calls (compile included), seconds: ' + '; '.join(
            f"{r['case']}: " + ', '.join(f"{n} {r['kernels'][n]['first_s']}" for n in names
                                         if 'first_s' in r['kernels'][n]) for r in kr), '']
    bb = result.get('backbones')
    if bb:
        lines += ['## Backbones, forward+backward under bf16 autocast', '',
                  '| backbone | size/batch | kernel | time (ms) | x ResNet-50 | peak (GiB) | '
                  'x ResNet-50 | first call (s) |',
                  '|---|---|---|---:|---:|---:|---:|---:|']
        for r in bb:
            note = r.get('skipped') or r.get('error')
            lines.append(f"| {r['backbone']} | {r['size']}/{r['batch']} | {r['kernel']} | "
                         + (f'{note} | | | | |' if note else
                            f"{_fmt(r['median_ms'], '.1f')} | {_fmt(r.get('time_ratio'))} | "
                            f"{_fmt(r.get('peak_gib'))} | {_fmt(r.get('memory_ratio'))} | "
                            f"{_fmt(r['first_s'])} |"))
        lines.append('')
    return '\n'.join(lines)


def write(result, out):
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'gpu_check.json'), 'w') as f:
        json.dump(result, f, indent=1)
    with open(osp.join(out, 'gpu_check.md'), 'w') as f:
        f.write(markdown(result))


def run(out, sections=SECTIONS, quick=False, device=None, repeat=None, warmup=None,
        size=None, batches=None, budget_s=420.0, command='tools/analysis_tools/gpu_check.py'):
    """The check (the tool's arguments, see ``tools/analysis_tools/gpu_check.py --help``);
    returns the result dict written to ``out``."""
    start = time.monotonic()
    device = torch.device(device or ('cpu' if quick else 'cuda'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('gpu_check: CUDA is not available (use --quick for the CPU check)')
    warmup = warmup if warmup is not None else (0 if quick else 2)
    repeat = repeat if repeat is not None else (1 if quick else 5)
    size = size or (64 if quick else 1024)
    batches = batches or ([1] if quick else [1, 2])
    result = dict(command=command + (' --quick' if quick else ''), env=env_info(device),
                  settings=dict(warmup=warmup, repeat=repeat, size=size, batches=batches,
                                budget_s=budget_s, sections=list(sections)))
    print(json.dumps(result['env']), flush=True)
    for section in SECTIONS:
        if section not in sections:
            continue
        try:
            if section == 'exactness':
                result[section] = check_exactness(device, quick)
            elif section == 'kernels':
                result[section] = bench_kernels(device, quick, warmup, max(repeat, 1))
            else:
                result[section] = bench_backbones(device, quick, size, batches, warmup,
                                                  max(repeat // 2, 1),
                                                  start + budget_s)
        except Exception as e:  # noqa: BLE001  (a section's failure is part of the report)
            result.setdefault('errors', {})[section] = traceback.format_exc()[-3000:]
            print(f'[{section}] failed: {_error(e)}', flush=True)
        result['elapsed_s'] = round(time.monotonic() - start, 1)
        write(result, out)
    print(markdown(result), flush=True)
    print(f'written: {osp.join(out, "gpu_check.json")}, gpu_check.md', flush=True)
    return result
