"""The attention-kernel table: each kernel of the exact relative attention against the floor
(one plain scaled-dot-product attention on the same q/k/v, no position terms),
forward+backward, batch 1, 8 heads, fp32, CPU time, interleaved.

Rows (``mmattn/analysis/bench_kernels.py``; ``--rows`` picks by index): 50x84 tokens q/k 16
/ v 32 (LESA stage 3 at 800x1344), 64x64 16/32, 50x84 32/64, 100x167 16/32 (the LESA rows
with LESA's BatchNorm over the logits, training mode), 100x167 q/k 20 / v 2 (AA stage 2 at
800x1344, no norm). Kernels (``--kernels``): ``floor``, ``explicit`` (skipped where its
``(HW)^2`` tensors are estimated above ``--max-gib``), ``chunked``, ``ext`` (the compiled CPU
kernel; skipped where it is not built) and ``sdpa``.

Time: for each thread count of ``--threads`` (default 1 and 2) and each row, every kernel
runs one warm-up step, then ``--rounds`` rounds of one forward+backward each in turn (floor,
explicit, chunked, ext, sdpa, floor, ...) in this one process; each step is timed by the
process's CPU time; the table gives each kernel's median as a ratio to the floor's, and the
median in seconds. At two threads the CPU time is the work of both threads, not the elapsed
time (the JSON keeps the wall medians too). A kernel whose warm-up step takes more than
``--budget`` CPU seconds is reported by that one step (marked ``*``).

``--memory``: before any timing, peak memory of one step per (row, kernel) in a fresh
process forked from this one (peak RSS growth, ``mmattn.analysis.peak_memory``), one thread,
as a ratio to the floor's.

``--quick``: two toy rows (6x7, 5x6), two rounds, one thread unless ``--threads`` says
otherwise (the tests).

The LESA-module / AA-layer cases of the earlier version of this tool (``--cases``) are gone:
the whole backbones run in tools/analysis_tools/benchmark.py (``NAME@ext``, ``NAME@chunked``,
... compare kernels inside them), and the rows above cover the attention cores.

Example::

    python tools/analysis_tools/benchmark_attention.py --rounds 5 --threads 1 2 --memory
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KERNELS = ('floor', 'explicit', 'chunked', 'ext', 'sdpa')  # = bench_kernels.KERNELS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rounds', '--repeat', type=int, default=5,
                   help='timed rounds after the warm-up (median)')
    p.add_argument('--threads', type=int, nargs='+', default=None,
                   help='torch thread counts, one table each (default: 1 2; --quick: 1)')
    p.add_argument('--kernels', nargs='+', default=list(KERNELS), choices=KERNELS,
                   help='kernels to compare (the floor is always added)')
    p.add_argument('--rows', type=int, nargs='+', default=None,
                   help='row indices (0-based) of the table (default: all)')
    p.add_argument('--memory', action='store_true',
                   help='also peak memory per (row, kernel), each in a fresh process')
    p.add_argument('--max-gib', type=float, default=8.0,
                   help='skip a case whose estimated peak memory exceeds this (GiB)')
    p.add_argument('--budget', type=float, default=120.0,
                   help='a kernel whose warm-up step takes longer (CPU s) is reported by that '
                   'step alone')
    p.add_argument('--max-seconds', type=float, default=None,
                   help='stop a row\'s rounds after this many seconds (after one round)')
    p.add_argument('--quick', action='store_true', help='toy rows, 2 rounds, one thread')
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--json', default=None, help='also write the results here')
    p.add_argument('--markdown', default=None, help='also write the tables here')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    args = p.parse_args(argv)
    if 'floor' not in args.kernels:
        args.kernels = ['floor'] + args.kernels
    args.kernels = [k for k in KERNELS if k in args.kernels]
    if args.quick:
        args.rounds = min(args.rounds, 2)
    if args.threads is None:
        args.threads = [1] if args.quick else [1, 2]
    return args


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmattn.analysis import quiet
    from mmattn.analysis.cli import outfile
    quiet(args.verbose)
    import torch

    from mmattn.analysis import bench_kernels as bk
    from mmattn.analysis.interleave import machine_line
    from mmattn.ops import ext_status
    rows = bk.QUICK_ROWS if args.quick else bk.ROWS
    if args.rows is not None:
        bad = [i for i in args.rows if not 0 <= i < len(rows)]
        if bad:
            sys.exit(f'benchmark_attention.py: error: --rows {bad[0]}: there are {len(rows)} '
                     'rows (0-based)')
        rows = [rows[i] for i in args.rows]
    t0 = time.time()
    head = [machine_line(),
            f'torch {torch.__version__}; {ext_status()}; device {args.device}',
            f'forward+backward, batch 1, {bk.HEADS} heads, fp32; time: median '
            + ('wall time (synchronised)' if args.device.startswith('cuda')
               else 'CPU time (time.process_time)')
            + f' of {args.rounds} interleaved round(s) after one warm-up, '
            f'threads {" and ".join(map(str, args.threads))}; ratios to the floor']
    print('\n'.join(head), flush=True)
    skipped = bk.plan(rows, args.kernels, args.max_gib, args.device)

    memory = {}
    if args.memory:  # first: the children are forked from a process that computed nothing
        for i, row in enumerate(rows):
            for kernel in args.kernels:
                if skipped[i, kernel]:
                    memory[i, kernel] = dict(skipped=skipped[i, kernel])
                    continue
                memory[i, kernel] = bk.measure_memory(row, kernel, args.device)
                m = memory[i, kernel]
                print(f'memory {bk.row_name(row)} {kernel}: '
                      + (f'{m["peak"] / 2**20:.0f} MiB' if 'peak' in m else m['error']),
                      file=sys.stderr, flush=True)
            base = memory.get((i, 'floor'), {}).get('peak')
            for kernel in args.kernels:
                m = memory[i, kernel]
                if 'peak' in m and base:
                    m['peak_ratio'] = m['peak'] / base

    results = []
    for threads in args.threads:
        for i, row in enumerate(rows):
            kernels = [k for k in args.kernels if not skipped[i, k]]
            res = bk.measure_times(row, kernels, args.rounds, threads, args.device,
                                   budget=args.budget, max_seconds=args.max_seconds,
                                   log=lambda m: print(m, file=sys.stderr, flush=True))
            results.append(dict(row=row, threads=threads, times=res,
                                skipped={k: skipped[i, k] for k in args.kernels
                                         if skipped[i, k]}))
            print(f'{bk.row_name(row)}, {threads} thread(s): '
                  + ', '.join(f'{k} {r["cpu"]:.3f} s' for k, r in res.items()
                              if r.get('cpu') is not None), file=sys.stderr, flush=True)

    out = []
    for threads in args.threads:
        out += ['', f'Time, {threads} thread(s): median CPU time as a ratio to the floor '
                + ('(median seconds)' if threads == 1 else
                   '(median CPU seconds of all threads, OpenMP busy-waits included, which a '
                   'loaded machine inflates; the median wall seconds)'),
                '', bk.time_table(results, args.kernels, threads)]
    if args.memory:
        out += ['', 'Peak memory (one step, a fresh process each, one thread): ratio to the '
                'floor (peak RSS growth)', '', bk.memory_table(memory, rows, args.kernels)]
    extra = bk.notes(results)
    if extra or any(r.get('rounds') == 0 for e in results for r in e['times'].values()):
        out += [''] + extra + ['*: one step (the warm-up), not a median']
    out.append(f'\n{time.time() - t0:.0f} s in all')
    text = '\n'.join(out)
    print(text)
    if args.markdown:
        with open(outfile(args.markdown), 'w') as f:
            f.write('\n\n'.join(head) + '\n' + text + '\n')
    if args.json:
        with open(outfile(args.json), 'w') as f:
            json.dump(dict(machine=head, rounds=args.rounds, threads=args.threads,
                           kernels=args.kernels,
                           times=[dict(row=e['row']._asdict(), threads=e['threads'],
                                       skipped=e['skipped'], results=e['times'])
                                  for e in results],
                           memory=[dict(row=rows[i]._asdict(), kernel=k, **m)
                                   for (i, k), m in memory.items()]), f, indent=1)
    return results, memory


if __name__ == '__main__':
    main()
