"""Training cost of every backbone, side by side: forward+backward time and peak memory, as
ratios to ResNet-50.

    python tools/analysis_tools/benchmark.py [--sizes 224 1024 1333x800]
        [--models resnet50 lesa_r50 aa_r50@explicit lesa_r50@chunked op:LALayer attention ...]
        [--kernels ext chunked sdpa] [--repeats 3] [--repeats-large 1] [--quick]
        [--device cpu|cuda] [--budget 300] [--threads N] [--clock cpu|wall] [--json FILE]
        [--markdown FILE] [--attention] [--list]

Time (:mod:`mmattn.analysis.bench_run`, :mod:`mmattn.analysis.interleave`): all backbones of
one size are built in one worker process; after a warm-up step each, ``--repeats`` rounds run
one forward+backward of every backbone in turn (A, B, C, A, B, C, ...); each step is timed by
the worker's CPU time (``--clock cpu``, the default on CPU, with one torch thread by default)
and the median per backbone is reported with its ratio to ResNet-50's. The CPU model, core
count and load are printed first.

Cases (``--models`` = ``--backbones``, default: all; ``--list`` prints them): the papers'
backbones, each built from our configs (``model.backbone``, nothing loaded), ``NAME@explicit``
/ ``NAME@fused`` for LESA and AA on that attention path instead of ``auto``, ``NAME@ext`` /
``NAME@chunked`` / ``NAME@sdpa`` for that fused kernel (``--kernels K ...`` adds them for every
LESA/SA/AA case given), the group ``attention`` (every config backbone with attention), and
``op:<registry name>`` for every registered operator (``mmattn.models.layers.base.
list_operators``) in the stages 3 and 4 of a ResNet-50. What each case builds at 224x224 and
at the detection sizes: :mod:`mmattn.analysis.bench_cases`; how time and memory are measured:
:mod:`mmattn.analysis.bench_run` and :mod:`mmattn.analysis.memory` (docs/benchmarks.md).

Sizes (``--sizes``): ``224`` = 224x224, batch 8; ``1024`` = 1024x1024, batch 1; ``1333x800`` =
800x1344, batch 1 (a 1333x800 image resized keeping its ratio, padded to a multiple of 32 as
mmdet's data preprocessor does); or ``HEIGHTxWIDTH/BATCH``, e.g. ``64x64/2``.

``--attention`` also runs tools/analysis_tools/benchmark_attention.py (the attention-kernel
table: each kernel against plain SDPA) with the same ``--repeats``, ``--threads`` and
``--device``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE_PRESETS = {'224': (224, 224, 8), '1024': (1024, 1024, 1), '1333x800': (800, 1344, 1)}
BASELINE = 'resnet50'


def parse_size(text):
    if text in SIZE_PRESETS:
        return SIZE_PRESETS[text]
    try:
        hw, _, batch = text.partition('/')
        h, w = hw.split('x')
        return int(h), int(w), int(batch or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r}: a preset ({", ".join(SIZE_PRESETS)}) or HEIGHTxWIDTH/BATCH')


def parse_args(argv=None):
    """Arguments, checked without importing torch (the case names are checked in main)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', nargs='+', type=parse_size, default=[SIZE_PRESETS['224']],
                   help='presets 224, 1024, 1333x800 or HEIGHTxWIDTH/BATCH (default: 224)')
    p.add_argument('--backbones', '--models', nargs='+', default=None,
                   help='case names (NAME@explicit|@fused for an attention path, '
                   'NAME@ext|@chunked|@sdpa for a fused kernel; the group attention = every '
                   'config backbone with attention); default: every case (--list)')
    p.add_argument('--kernels', nargs='+', default=None, choices=('ext', 'chunked', 'sdpa'),
                   help='also run every LESA/SA/AA case given with each of these fused '
                   'kernels (NAME@KERNEL)')
    p.add_argument('--list', action='store_true', help='print the case names and exit')
    p.add_argument('--repeat', '--repeats', type=int, default=3,
                   help='timed rounds after the warm-up (0: report the warm-up step itself)')
    p.add_argument('--repeat-large', '--repeats-large', type=int, default=None,
                   help='timed rounds for sizes above 224x224 (default: --repeat)')
    p.add_argument('--quick', action='store_true',
                   help='one timed round and a budget of at most 120 s per warm-up step')
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--budget', type=float, default=300.0,  # CPU seconds with --clock cpu
                   help='skip a backbone whose warm-up step takes longer (seconds)')
    p.add_argument('--max-gib', type=float, default=12.0,
                   help='skip explicit-attention cases estimated above this (GiB)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads (default on CPU: 1; on a shared, loaded machine two '
                   'OpenMP threads wait on each other at every barrier: measured 6-13x slower '
                   'than one on this project\'s 2-core machine at load 9)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default=None,
                   help='cpu (default on CPU): the worker\'s CPU time per step (user + system), '
                   'sound on a shared machine whose other jobs take the cores (with one '
                   'thread); wall: elapsed time (CUDA always uses wall)')
    p.add_argument('--no-memory', action='store_true', help='time only')
    p.add_argument('--json', default=None, help='also write the results here')
    p.add_argument('--markdown', default=None,
                   help='also write a markdown section (command, machine, date, table) here')
    p.add_argument('--attention', action='store_true',
                   help='also run benchmark_attention.py (single blocks, explicit vs fused)')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    args = p.parse_args(argv)
    if args.backbones is not None and BASELINE not in args.backbones:
        args.backbones = [BASELINE] + args.backbones  # the ratios need it
    cuda = str(args.device).startswith('cuda')
    if args.threads is None and not cuda:
        args.threads = 1
    if cuda or args.clock is None:
        args.clock = 'wall' if cuda else 'cpu'
    if args.quick:
        args.repeat = args.repeat_large = 1
        args.budget = min(args.budget, 120.0)

    def repeats_of(size):
        large = size[0] > 224 or size[1] > 224
        return args.repeat_large if large and args.repeat_large is not None else args.repeat
    args.repeats_of = repeats_of
    return args


def check_cases(args):
    """Fills in the default cases (every case) and refuses an unknown one."""
    from mmattn.analysis.bench_cases import (KERNELS, all_cases, check_case, expand_groups,
                                             has_kernels)
    if args.backbones is None:
        args.backbones = all_cases()
    args.backbones = expand_groups(args.backbones)
    if args.kernels:
        names = []
        for name in args.backbones:
            names.append(name)
            if '@' not in name and has_kernels(name):
                names += [f'{name}@{k}' for k in KERNELS if k in args.kernels]
        args.backbones = expand_groups(names)
    errors = [e for e in map(check_case, args.backbones) if e]
    if errors:
        sys.exit(f'benchmark.py: error: {errors[0]}')


def write_outputs(args, start, t0, command, results, final):
    """The JSON and markdown files (after every size and at the end); the summary header."""
    from mmattn.analysis.bench_report import format_table, ratio_table
    from mmattn.analysis.cli import outfile
    from mmattn.analysis.bench_run import load_average
    end_load = load_average()
    clock = ('CPU time per step (time.process_time)' if args.clock == 'cpu'
             else 'wall clock per step')
    header = (f'{start["date"]}, {start["cpu"]}, nproc {start["nproc"]}, torch '
              f'{start["torch"]} (torch threads: {args.threads or start["threads"]}), device '
              f'{args.device}, time: {clock}, median of interleaved rounds'
              + (f' ({start["gpu"]})' if 'gpu' in start else '')
              + f'; load average (1/5/15 min) {start["load"]} at the start, {end_load} at the '
              f'end; {time.time() - t0:.0f} s')
    sizes = '; '.join(f'{k}: {v["repeats"]} timed round(s), load {v["load_start"]} -> '
                      f'{v["load_end"]}, {v["seconds"]} s' for k, v in args.size_info.items())
    if args.json:
        with open(outfile(args.json), 'w') as f:
            json.dump(dict(machine=start, end_load=end_load, command=command,
                           sizes=args.size_info, complete=final, results=results), f, indent=1)
    if args.markdown:
        with open(outfile(args.markdown), 'w') as f:
            f.write(f'`{command}`\n\n{start["machine"]}\n\n{header}\n\nPer size: {sizes}\n\n'
                    + ('' if final else '(partial: the run is still going)\n\n')
                    + f'Ratios to ResNet-50:\n\n{ratio_table(results)}\n\n'
                    f'Absolute figures:\n\n{format_table(results, markdown=True)}\n')
    return header


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
    sys.path.insert(0, REPO)
    from mmattn.analysis import quiet
    quiet(args.verbose)
    check_cases(args)
    if args.list:
        from mmattn.analysis.bench_cases import label
        print('\n'.join(f'{name:<24} {label(name)}' for name in args.backbones))
        return None
    from mmattn.analysis.bench_report import format_table, machine_info, ratio_table
    from mmattn.analysis.bench_run import run
    start = machine_info(args.device)
    print(start['machine'], flush=True)
    t0 = time.time()
    command = 'python tools/analysis_tools/benchmark.py ' + ' '.join(
        a if ' ' not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))
    results = run(args, log=lambda m: print(m, flush=True),
                  partial=lambda r: write_outputs(args, start, t0, command, r, False))
    header = write_outputs(args, start, t0, command, results, True)
    print()
    print(start['machine'])
    print(header)
    print(format_table(results))
    print()
    print('Ratios to ResNet-50:')
    print(ratio_table(results, markdown=False))
    if args.attention:
        print('\nSingle attention blocks (tools/analysis_tools/benchmark_attention.py):',
              flush=True)
        subprocess.run([sys.executable, osp.join(osp.dirname(osp.abspath(__file__)),
                                                 'benchmark_attention.py'),
                        '--rounds', str(max(args.repeat, 1)), '--device', args.device,
                        '--max-gib', str(args.max_gib)]
                       + (['--threads', str(args.threads)] if args.threads else []),
                       cwd=REPO, check=False)
    return results


if __name__ == '__main__':
    main()
