"""Time and memory of External Attention against plain self-attention as the map grows.

External attention costs O(N S C) for N = H*W positions and S = 64 memory slots: time and
memory grow linearly in N. Self-attention's N x N map costs O(N^2 C) time and O(N^2) memory.
The script runs forward + backward of each operator at 32x32, 64x64 and 128x128 (C=512 by
default) and prints the two side by side with ratios to the 32x32 case (N ratios 1, 4, 16).

Each case runs in a fresh subprocess so that its peak memory can be read:

- ``saved MiB``: bytes of the tensors autograd keeps for the backward pass (exact, from
  ``torch.autograd.graph.saved_tensors_hooks``), the part that scales with N;
- ``peak MiB``: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the growth of the process'
  peak resident size during the measured steps, over the state after the inputs were built
  (:func:`mmattn.analysis.peak_memory`; allocator caching makes it coarser).

The self-attention is the explicit ``softmax(QK^T / sqrt(C)) V`` with 1x1 q/k/v projections
(what the paper compares against). Fused kernels (``scaled_dot_product_attention``) avoid
storing the map but not its O(N^2) time. Cases whose N x N maps would exceed ``--max-gib`` are
skipped.

Example::

    python tools/analysis_tools/benchmark_external_attention.py --channels 512 --batch 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = (32, 64, 128)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--channels', type=int, default=512, help='C (default 512)')
    parser.add_argument('--memory-size', type=int, default=64, help='S of EA (default 64)')
    parser.add_argument('--batch', type=int, default=2, help='batch size (default 2)')
    parser.add_argument('--sizes', type=int, nargs='+', default=list(SIZES),
                        help='square map sides (default 32 64 128)')
    parser.add_argument('--repeat', type=int, default=3, help='timed steps (median)')
    parser.add_argument('--max-gib', type=float, default=3.0,
                        help='skip self-attention cases whose maps would need more')
    parser.add_argument('--device', default=None, help='cuda or cpu (default: cuda if there '
                        'is one)')
    parser.add_argument('--verbose', action='store_true', help='library logs at INFO')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--case', help=argparse.SUPPRESS)  # internal: op,size
    return parser.parse_args(argv)


def sa_map_bytes(batch, side):
    """Self-attention keeps logits-sized tensors for backward (softmax output, its grad and
    the logits while they are formed): about 3 N x N float32 maps per sample."""
    n = side * side
    return 3 * batch * n * n * 4


def build_op(name, channels, memory_size):
    import torch
    import torch.nn as nn

    if name == 'EA':
        from mmattn.models.layers.external_attention import ExternalAttention
        return ExternalAttention(channels, memory_size=memory_size)

    class SelfAttention(nn.Module):

        def __init__(self, c):
            super().__init__()
            self.q = nn.Conv2d(c, c, 1)
            self.k = nn.Conv2d(c, c, 1)
            self.v = nn.Conv2d(c, c, 1)
            self.scale = c**-0.5

        def forward(self, x):
            b, c, h, w = x.shape
            q = self.q(x).flatten(2).transpose(1, 2)  # (B, N, C)
            k = self.k(x).flatten(2)  # (B, C, N)
            v = self.v(x).flatten(2).transpose(1, 2)
            attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)  # (B, N, N)
            return torch.bmm(attn, v).transpose(1, 2).reshape(b, c, h, w)

    return SelfAttention(channels)


def run_case(args):
    import torch

    from mmattn.analysis import peak_memory
    if args.threads:
        torch.set_num_threads(args.threads)
    name, side = args.case.split(',')
    side = int(side)
    device = torch.device(args.device)
    torch.manual_seed(0)
    op = build_op(name, args.channels, args.memory_size).to(device)
    x = torch.randn(args.batch, args.channels, side, side, device=device, requires_grad=True)

    def step():
        out = op(x)
        out.float().square().mean().backward()
        x.grad = None
        op.zero_grad(set_to_none=True)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def steps():
        step()  # warm-up
        times = []
        for _ in range(args.repeat):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t0)
        return times
    times, peak = peak_memory(steps, device)

    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = op(x)
    del out
    print(json.dumps(dict(ms=1e3 * statistics.median(times), saved=sum(saved), peak=peak)))


def measure(args, name, side):
    cmd = [sys.executable, os.path.abspath(__file__), '--case', f'{name},{side}',
           '--channels', str(args.channels), '--memory-size', str(args.memory_size),
           '--batch', str(args.batch), '--repeat', str(args.repeat), '--device', args.device,
           '--threads', str(args.threads)]
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (ROOT, env.get('PYTHONPATH')) if p)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f'{name} at {side}x{side} failed:\n{res.stderr}')
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    from mmattn.analysis import Progress, quiet
    quiet(args.verbose)
    import torch
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.case:
        run_case(args)
        return
    print(f'torch {torch.__version__}, device {args.device}, threads '
          f'{args.threads or torch.get_num_threads()}, C={args.channels}, '
          f'S={args.memory_size}, batch {args.batch}, forward+backward, median of '
          f'{args.repeat}')
    results = {}
    progress = Progress(len(args.sizes), 'sizes', stream=sys.stderr)
    for side in args.sizes:
        results[('EA', side)] = measure(args, 'EA', side)
        if sa_map_bytes(args.batch, side) <= args.max_gib * 2**30:
            results[('SA', side)] = measure(args, 'SA', side)
        else:
            results[('SA', side)] = None
        progress.step(f'{side}x{side}')

    mib = 2**20
    ref = args.sizes[0]
    head = (f"{'HxW':>8} {'N/N0':>5} | {'EA ms':>8} {'x':>6} {'saved MiB':>10} {'x':>6} "
            f"{'peak MiB':>9} | {'SA ms':>8} {'x':>6} {'saved MiB':>10} {'x':>6} "
            f"{'peak MiB':>9}")
    print(head)
    print('-' * len(head))
    for side in args.sizes:
        cells = [f'{side}x{side:<4}'.rjust(8), f'{(side / ref)**2:5.0f}']
        for name in ('EA', 'SA'):
            r, r0 = results[(name, side)], results[(name, ref)]
            if r is None:
                est = sa_map_bytes(args.batch, side) / 2**30
                cells.append(f'| {"skipped (maps ~%.1f GiB > --max-gib)" % est:>44}')
                continue
            cells.append(f"| {r['ms']:8.1f} {r['ms'] / r0['ms']:6.1f} "
                         f"{r['saved'] / mib:10.1f} {r['saved'] / r0['saved']:6.1f} "
                         f"{r['peak'] / mib:9.1f}")
        print(' '.join(cells))
    print('x: ratio to the first size. Linear cost: EA ratios track N/N0; quadratic: SA '
          'ratios track (N/N0)^2.')
    return results


if __name__ == '__main__':
    main()
