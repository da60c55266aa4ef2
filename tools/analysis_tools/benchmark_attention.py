"""Forward+backward time and peak memory of the exact relative attention, side by side.

Cases (batch 1, fp32):

1. One LESA block (w=256: 8 heads, q/k 16, v 32, BatchNorm over the logits in training mode)
   at 64x64 and 50x84: the attention core ``explicit`` and ``fused`` (see
   ``mmattn/models/layers/attention/``) against the ``floor``, one plain
   ``scaled_dot_product_attention`` on the same q/k/v with no position terms (on CPU q/k are
   zero-padded to v's 32 dims so that SDPA's flash kernel runs, which leaves the logits
   unchanged; otherwise SDPA falls back to its math path and the floor would be slow). Also
   the whole LESA module (qkv projection, unary term, gate, norms), explicit vs fused.
2. One AA layer (AAConv2d with kappa=0.2, upsilon=0.1, 8 heads, >= 20 key dims per head) at
   50x84 (stride 16 of 1333x800, stage-3 width 256) and 100x168 (stride 8, stage-2 width 128):
   explicit vs fused (and the floor for scale). A case whose estimated memory exceeds
   ``--max-gib`` is skipped with a message.

Every case runs in a fresh subprocess. Peak memory (:func:`mmattn.analysis.peak_memory`): on
CPU the peak RSS growth of that process over its RSS just before the first iteration
(tracemalloc does not see torch's allocations); on CUDA ``torch.cuda.max_memory_allocated``
over the allocation before.
Time is the median of ``--repeat`` forward+backward runs after one warm-up run.

Example::

    python tools/analysis_tools/benchmark_attention.py --repeat 3
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# (label, kind, size, width)
LESA_CASES = [('LESA w=256', 'lesa', (64, 64), 256), ('LESA w=256', 'lesa', (50, 84), 256)]
AA_CASES = [('AA w=256', 'aa', (50, 84), 256), ('AA w=128', 'aa', (100, 168), 128)]
# explicit keeps about this many (B, heads, HW, HW) fp32 tensors alive at its peak (logit terms,
# their sum or BatchNorm output, probabilities, and their gradients); measured 5x on LESA 64x64
EXPLICIT_TENSORS = 6


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repeat', type=int, default=3, help='timed runs per case (median)')
    p.add_argument('--max-gib', type=float, default=16.0,
                   help='skip a case whose estimated peak memory exceeds this (GiB)')
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--cases', nargs='+', default=['lesa', 'aa'], choices=['lesa', 'aa'])
    p.add_argument('--threads', type=int, default=None, help='torch threads (CPU)')
    p.add_argument('--json', default=None, help='also write the results here')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    return p.parse_args()


# ----------------------------------------------------------------------------------------------
# child: one measurement
# ----------------------------------------------------------------------------------------------
def _build(spec, device):
    import torch

    from mmattn.models.layers.aa_conv import AAConv2d
    from mmattn.models.layers.attention import relative_attention, sdpa_attention
    from mmattn.models.layers.lesa import LESA

    kind, (H, W), width, variant = spec['kind'], spec['size'], spec['width'], spec['variant']
    torch.manual_seed(0)
    if variant == 'floor' or variant.startswith('core-'):
        if kind == 'lesa':
            heads, dq, dv, scale = 8, width // 16, width // 8, 1.0
        else:
            m = AAConv2d(width, width, max_size=(H, W))
            heads, dq, dv, scale = m.num_heads, m.dkh, m.dvh, m.dkh**-0.5
        L = H * W
        q = (torch.randn(1, heads, L, dq, device=device) * scale).requires_grad_()
        k = torch.randn(1, heads, L, dq, device=device, requires_grad=True)
        v = torch.randn(1, heads, L, dv, device=device, requires_grad=True)
        rh = (torch.randn(2 * H - 1, dq, device=device) * dq**-0.5).requires_grad_()
        rw = (torch.randn(2 * W - 1, dq, device=device) * dq**-0.5).requires_grad_()
        bn = torch.nn.BatchNorm2d(2 * heads).to(device).train() if kind == 'lesa' else None
        go = torch.randn(1, heads, L, dv, device=device)
        if variant == 'floor':
            def step():
                sdpa_attention(q, k, v).backward(go)
        else:
            impl = variant[len('core-'):]

            def step():
                relative_attention(q, k, v, rh, rw, (H, W), logit_norm=bn,
                                   impl=impl).backward(go)
        return step
    impl = variant[len('module-'):]
    if kind == 'lesa':
        m = LESA(width, width, max_size=(H, W), attn_impl=impl)
    else:
        m = AAConv2d(width, width, max_size=(H, W), attn_impl=impl)
    m = m.to(device).train()
    x = torch.randn(1, width, H, W, device=device, requires_grad=True)

    def step():
        out = m(x)
        out.backward(torch.ones_like(out))
    return step


def child(spec_json):
    import statistics
    import time

    import torch

    from mmattn.analysis import peak_memory
    spec = json.loads(spec_json)
    if spec.get('threads'):
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    step = _build(spec, device)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def runs():
        times = []
        for i in range(spec['repeat'] + 1):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            if i:  # the first run warms up
                times.append(time.perf_counter() - t0)
        return times
    times, peak = peak_memory(runs, device)
    print(json.dumps(dict(time=statistics.median(times), peak=peak)))


# ----------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------
def _estimate_gib(kind, size, width, variant):
    H, W = size
    L = H * W
    heads = 8
    qkv = 4 * L * width * 8                          # q/k/v/tables/grads: small next to logits
    if 'explicit' in variant:
        return (EXPLICIT_TENSORS * heads * L * L * 4 + qkv) / 2**30
    return qkv / 2**30


def run_case(spec, args):
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    proc = subprocess.run([sys.executable, osp.abspath(__file__), '--child', json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        return dict(error=(proc.stderr.strip().splitlines() or ['failed'])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_variant(args, label, kind, size, width, variant, floor):
    """One case in a fresh process, its line printed; its result (or why it was skipped)."""
    spec = dict(kind=kind, size=size, width=width, variant=variant, device=args.device,
                repeat=args.repeat, threads=args.threads)
    est = _estimate_gib(kind, size, width, variant)
    size_s = f'{size[0]}x{size[1]}'
    head = f'{label:<12} {size_s:>8} {variant:<16}'
    if est > args.max_gib:
        print(f'{head} skipped: estimated {est:.1f} GiB > --max-gib {args.max_gib:g}')
        return dict(skipped=est)
    res = run_case(spec, args)
    if 'error' in res:
        print(f'{head} error: {res["error"]}')
        return res
    t_ratio = m_ratio = ''
    if floor is not None and variant.startswith('core-'):
        t_ratio = f'{res["time"] / floor["time"]:.2f}x'
        m_ratio = f'{res["peak"] / max(floor["peak"], 1):.2f}x'
    print(f'{head} {res["time"]:>9.3f} {res["peak"] / 2**30:>11.3f} {t_ratio:>11} '
          f'{m_ratio:>10}', flush=True)
    return res


def main():
    args = parse_args()
    sys.path.insert(0, REPO)
    from mmattn.analysis import Progress, quiet
    quiet(args.verbose)
    if args.child:
        child(args.child)
        return
    import torch
    rows = []
    cases = (LESA_CASES if 'lesa' in args.cases else []) + (AA_CASES if 'aa' in args.cases
                                                             else [])
    variants = ['floor', 'core-explicit', 'core-fused', 'module-explicit', 'module-fused']
    progress = Progress(len(cases) * len(variants), 'cases', stream=sys.stderr)
    header = (f'{"case":<12} {"size":>8} {"variant":<16} {"time (s)":>9} {"peak (GiB)":>11} '
              f'{"time/floor":>11} {"mem/floor":>10}')
    print(f'torch {torch.__version__}, device {args.device}, threads '
          f'{args.threads or torch.get_num_threads()}, batch 1, fp32, forward+backward, '
          f'median of {args.repeat}')
    print(header)
    print('-' * len(header))
    for label, kind, size, width in cases:
        floor = None
        for variant in variants:
            res = measure_variant(args, label, kind, size, width, variant, floor)
            rows.append(dict(case=label, size=size, variant=variant, **res))
            floor = res if variant == 'floor' and 'time' in res else floor
            progress.step(f'{label} {size[0]}x{size[1]} {variant}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
