"""The attention-kernel table (issue 17): each kernel of the exact relative attention against
the floor, one plain scaled-dot-product attention on the same q/k/v without position terms,
forward+backward, batch 1, 8 heads, fp32.

Rows (:data:`ROWS`): the token grids and head dims of the backbones at detection sizes, the
issue's five rows first: the kernel alone (content + row + column terms, no logit norm; ``q``
scaled by ``d ** -0.5``). A last row adds LESA's BatchNorm over the two stacked logit terms in
training mode (``norm='bn'``): its batch statistics come from moments outside the kernel
(``logit_norm.py``), a cost of LESA's layer, not of the kernel.
Kernels (:data:`KERNELS`), each a :func:`~mmattn.models.layers.attention.relative_attention`
call but the floor:

- ``floor``: :func:`~mmattn.models.layers.attention.sdpa_attention` on ``q, k, v`` (torch's
  ``F.scaled_dot_product_attention``; on CPU q/k/v are zero-padded to one head dim so that
  its flash kernel runs, which leaves the result unchanged; unpadded, SDPA would take its math
  path and materialise the logits, a floor that flatters every kernel).
- ``explicit``: ``impl='explicit'``, the ``(HW)^2`` reference; skipped where its estimated
  memory (:func:`estimate_gib`) exceeds the limit.
- ``chunked``, ``ext``, ``sdpa``: ``impl='fused'`` with that kernel (``ext``: the compiled
  CPU kernel of ``mmattn/ops``; skipped with ``ext_status()`` where it is not built).

Time: :func:`measure_times`, every kernel of a row round-robin in one process
(:mod:`.interleave`), CPU time per call, medians, ratios to the floor. Memory:
:func:`measure_memory`, one step per (row, kernel) in a fresh process forked from a parent that
has computed nothing (:func:`.memory.peak_memory`: peak RSS growth).
"""
import collections

from .interleave import interleave

Row = collections.namedtuple('Row', 'label size dqk dv norm')
HEADS = 8
ROWS = [
    Row('LESA stage 3 at 800x1344', (50, 84), 16, 32, None),
    Row('LESA stage 3 at 1024', (64, 64), 16, 32, None),
    Row('LESA-WRN50 stage 3 at 800x1344', (50, 84), 32, 64, None),
    Row('stride 8 at 800x1344, LESA dims', (100, 167), 16, 32, None),
    Row('AA stage 2 at 800x1344', (100, 167), 20, 2, None),
    Row('LESA stage 3 at 800x1344 with its BatchNorm over the logits', (50, 84), 16, 32, 'bn'),
]
# --quick (tests): the same kinds of rows at toy size
QUICK_ROWS = [
    Row('tiny, LESA dims', (6, 7), 16, 32, 'bn'),
    Row('tiny, AA dims', (5, 6), 20, 2, None),
]
KERNELS = ('floor', 'explicit', 'chunked', 'ext', 'sdpa')
BASELINE = 'floor'
# explicit keeps about this many (B, heads, HW, HW) fp32 tensors alive at its peak (logit
# terms, their sum or BatchNorm output, probabilities, and their gradients); measured 5x on
# LESA 64x64
EXPLICIT_TENSORS = 6


def row_name(row):
    H, W = row.size
    return f'{H}x{W} {row.dqk}/{row.dv}' + (' BN' if row.norm else '')


def estimate_gib(row, kernel):
    """Rough peak memory of one step: the explicit path's ``(HW)^2`` tensors, else q/k/v."""
    L = row.size[0] * row.size[1]
    small = 8 * HEADS * L * (2 * row.dqk + 2 * row.dv) * 4
    if kernel == 'explicit':
        return (EXPLICIT_TENSORS * HEADS * L * L * 4 + small) / 2**30
    return small / 2**30


def unavailable(kernel, device='cpu'):
    """None, or why ``kernel`` cannot run here."""
    if kernel == 'ext':
        from ..models.layers.attention import ext_kernel_available
        from ..ops import ext_status
        if str(device) != 'cpu':
            return 'the compiled kernel runs on CPU'
        if not ext_kernel_available():
            return ext_status()
    return None


def make_inputs(row, device='cpu', seed=0):
    """``q, k, v, rel_h, rel_w, grad_out, bn`` of a row (leaf tensors that need grad)."""
    import torch
    torch.manual_seed(seed)
    H, W = row.size
    L, d, e = H * W, row.dqk, row.dv
    q = (torch.randn(1, HEADS, L, d, device=device) * d**-0.5).requires_grad_()
    k = torch.randn(1, HEADS, L, d, device=device, requires_grad=True)
    v = torch.randn(1, HEADS, L, e, device=device, requires_grad=True)
    rh = (torch.randn(2 * H - 1, d, device=device) * d**-0.5).requires_grad_()
    rw = (torch.randn(2 * W - 1, d, device=device) * d**-0.5).requires_grad_()
    go = torch.randn(1, HEADS, L, e, device=device)
    bn = torch.nn.BatchNorm2d(2 * HEADS).to(device).train() if row.norm == 'bn' else None
    return q, k, v, rh, rw, go, bn


def make_step(row, kernel, inputs):
    """``step()``: one forward+backward of ``kernel`` on ``inputs`` (:func:`make_inputs`);
    ``step.release()`` drops the gradients."""
    from ..models.layers.attention import relative_attention, sdpa_attention
    q, k, v, rh, rw, go, bn = inputs
    leaves = [q, k, v, rh, rw] + (list(bn.parameters()) if bn is not None else [])

    def release():
        for t in leaves:
            t.grad = None

    if kernel == 'floor':
        def step():
            sdpa_attention(q, k, v).backward(go)
    else:
        impl, kern = ('explicit', 'auto') if kernel == 'explicit' else ('fused', kernel)

        def step():
            relative_attention(q, k, v, rh, rw, row.size, logit_norm=bn, impl=impl,
                               kernel=kern).backward(go)
    step.release = release
    return step


def plan(rows, kernels, max_gib, device='cpu'):
    """``{(row index, kernel): None or why it is skipped}``."""
    out = {}
    for i, row in enumerate(rows):
        for kernel in kernels:
            why = unavailable(kernel, device)
            est = estimate_gib(row, kernel)
            if why is None and est > max_gib:
                why = f'estimated {est:.1f} GiB > --max-gib {max_gib:g}'
            out[i, kernel] = why
    return out


def measure_times(row, kernels, rounds, threads, device='cpu', budget=None, max_seconds=None,
                  order=None, log=None):
    """Every kernel of ``kernels`` on one row, interleaved in this process at ``threads``
    torch threads: :func:`.interleave.interleave`'s dict (medians, ratios to the floor).

    ``budget``: a kernel whose warm-up step takes more CPU seconds is timed by that step alone
    (``rounds`` 0 in the result) and left out of the rounds. ``log(message)``: progress."""
    import time

    import torch
    torch.set_num_threads(threads)
    cuda = str(device).startswith('cuda')
    sync = torch.cuda.synchronize if cuda else None
    # on CUDA the CPU time of a step is the launch overhead: time by the wall clock there
    clock = time.perf_counter if cuda else time.process_time
    inputs = make_inputs(row, device)
    steps = {kernel: make_step(row, kernel, inputs) for kernel in kernels}
    slow = {}
    if budget is not None:  # the warm-up here, one step each, to find the slow ones
        for kernel, step in list(steps.items()):
            c0, w0 = clock(), time.perf_counter()
            try:
                step()
                if sync:
                    sync()
            except Exception as e:  # noqa: BLE001
                slow[kernel] = dict(cpu=None, wall=None, rounds=0,
                                    error=f'{type(e).__name__}: {e}'[:300])
                del steps[kernel]
                continue
            finally:
                step.release()
            cpu, wall = clock() - c0, time.perf_counter() - w0
            if log:
                log(f'{row_name(row)}, {threads} thread(s), {kernel}: warm-up {cpu:.2f} s')
            if cpu > budget:
                slow[kernel] = dict(cpu=cpu, wall=wall, rounds=0, note=f'one step (its warm-up '
                                    f'took {cpu:.0f} s > --budget {budget:g})')
                del steps[kernel]
    res = interleave(steps, rounds, baseline=None, warmup=0 if budget is not None else 1,
                     clock=clock, sync=sync, after=lambda name: steps[name].release(), order=order,
                     max_seconds=max_seconds)
    res.update(slow)
    base = res.get(BASELINE, {}).get('cpu')
    for r in res.values():
        r['ratio'] = r['cpu'] / base if r.get('cpu') is not None and base else None
    return {kernel: res[kernel] for kernel in kernels if kernel in res}


def _memory_child(conn, row, kernel, device, threads):
    try:
        import torch

        from .memory import peak_memory
        torch.set_num_threads(threads)
        inputs = make_inputs(row, device)
        step = make_step(row, kernel, inputs)
        _, peak = peak_memory(step, device)
        conn.send(dict(peak=peak))
    except Exception as e:  # noqa: BLE001
        conn.send(dict(error=f'{type(e).__name__}: {e}'[:300]))
    finally:
        conn.close()


def measure_memory(row, kernel, device='cpu', threads=1):
    """Peak memory growth (bytes) of one step of ``kernel`` on ``row`` in a fresh process:
    ``{'peak': bytes}`` or ``{'error': why}``. Call it before this process computes anything
    (the child is forked: it starts with what is imported and no thread pool)."""
    import multiprocessing as mp
    ctx = mp.get_context('fork' if 'fork' in mp.get_all_start_methods() else 'spawn')
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_memory_child, args=(child, row, kernel, device, threads))
    proc.start()
    child.close()
    try:
        msg = parent.recv()
    except EOFError:
        msg = dict(error=f'worker died (exit {proc.exitcode})')
    proc.join()
    return msg


# ----------------------------------------------------------------------------------- the table
def _fmt_s(x):
    if x is None:
        return '-'
    return f'{x * 1e3:.2f} ms' if x < 0.01 else (f'{x:.3f} s' if x < 10 else f'{x:.1f} s')


def _cell(r, key, unit, wall=False):
    if r is None:
        return '-'
    if r.get('error'):
        return 'error'
    if r.get(key) is None:
        return '-'
    star = '*' if r.get('rounds') == 0 else ''
    ratio = r.get('ratio' if key == 'cpu' else 'peak_ratio')
    absolute = _fmt_s(r[key]) if unit == 's' else f'{r[key] / 2**20:.0f} MiB'
    if wall and r.get('wall') is not None:
        absolute += f'; wall {_fmt_s(r["wall"])}'
    return (f'{ratio:.2f}x' if ratio is not None else '?') + f' ({absolute}){star}'


def time_table(results, kernels, threads):
    """Markdown: one line per row at ``threads`` threads, each kernel's median-CPU-time ratio
    to the floor and (its median in seconds; above one thread also the wall-clock median)."""
    head = ['tokens', 'q/k', 'v', 'norm', 'threads', 'rounds'] + list(kernels)
    lines = ['| ' + ' | '.join(head) + ' |', '|---|---:|---:|---|---:|---:|'
             + '---:|' * len(kernels)]
    for entry in results:
        if entry['threads'] != threads:
            continue
        row, res = entry['row'], entry['times']
        rounds = max((r.get('rounds', 0) for r in res.values()), default=0)
        cells = [f'{row.size[0]}x{row.size[1]}', str(row.dqk), str(row.dv), row.norm or '-',
                 str(threads), str(rounds)]
        for kernel in kernels:
            cells.append(entry['skipped'].get(kernel) and 'skipped'
                         or _cell(res.get(kernel), 'cpu', 's', wall=threads > 1))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def memory_table(memory, rows, kernels):
    """Markdown: peak-memory ratio to the floor and (peak MiB) per row and kernel."""
    head = ['tokens', 'q/k', 'v', 'norm'] + list(kernels)
    lines = ['| ' + ' | '.join(head) + ' |', '|---|---:|---:|---|' + '---:|' * len(kernels)]
    for i, row in enumerate(rows):
        cells = [f'{row.size[0]}x{row.size[1]}', str(row.dqk), str(row.dv), row.norm or '-']
        for kernel in kernels:
            m = memory.get((i, kernel))
            if m is None:
                cells.append('-')
            elif 'skipped' in m:
                cells.append('skipped')
            else:
                cells.append(_cell(m, 'peak', 'MiB'))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def notes(results):
    """Why cells are skipped or errors, one line each (deduplicated)."""
    seen = []
    for entry in results:
        for kernel, why in entry['skipped'].items():
            if why:
                line = f'{row_name(entry["row"])} {kernel}: skipped, {why}'
                if line not in seen:
                    seen.append(line)
        for kernel, r in entry['times'].items():
            for key in ('error', 'note'):
                if r.get(key):
                    line = f'{row_name(entry["row"])} {kernel} ({entry["threads"]} threads): ' \
                           f'{r[key]}'
                    if line not in seen:
                        seen.append(line)
    return seen
