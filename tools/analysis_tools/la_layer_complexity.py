"""Parameters and multiply-adds of the LA-layer configs against the LA-layer paper (Tables 1-4).

    python tools/analysis_tools/la_layer_complexity.py [--det] [--seg] [--all]
        [--bench [--threads 1] [--reps 3]]

Every model is built from its config in ``configs/la_layer/`` (nothing loaded) and measured
with :mod:`mmattn.analysis`, the counters of the ledger (``docs/paper_tables.md``): parameters
of the whole classifier (fc included, as the paper's), multiply-adds at 224x224 counting
convolutions, fc and the LA-layer's products (its declared cost), the convention that gives
ResNet-50 4.09G; BN, pooling, softmax and bilinear sampling are not counted. The paper's
figures come from ``docs/paper_tables/la_layer.yml``. ``--det`` adds Table 3's detection
backbones (800x1333), ``--seg`` Table 4's DeepLabV3 backbones (512x512), ``--all`` the
parameters of every config's whole model (metafile.yml). Progress goes to stderr.

``--bench`` times forward + backward of one LALayer against the 3x3 conv it replaces (batch 8,
side by side in one process) and measures their memory: the bytes autograd keeps for backward
(exact) and the peak resident memory of one forward + backward in a fresh process.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--det', action='store_true', help='also the Table 3 detection backbones')
    p.add_argument('--seg', action='store_true', help='also the Table 4 DeepLabV3 backbones')
    p.add_argument('--all', action='store_true',
                   help='also the parameters of every config\'s whole model (metafile.yml)')
    p.add_argument('--bench', action='store_true', help='also time and measure memory')
    p.add_argument('--threads', type=int, default=1, help='torch threads for --bench')
    p.add_argument('--reps', type=int, default=3, help='timed repetitions for --bench')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    p.add_argument('--child', nargs=5, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def imagenet_tables(la, progress):
    paper = la.paper_figures()
    print('ImageNet configs (configs/la_layer/*' + la.SCHEDULE + '), whole classifier, 224 x 224')
    print('| model | params | paper M | gap | GMACs | paper G | gap |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    rows = [(label, la.imagenet_config(stem), None) for stem, label in la.IMAGENET]
    rows += [(label, la.imagenet_config(stem), opts) for label, stem, opts in la.ALTERNATIVES]
    for i, (label, cfg, opts) in enumerate(rows):
        if i == len(la.IMAGENET):
            print('| *other readings (not defaults)* | | | | | | |')
        m = la.measure(cfg, (224, 224), la_options=opts)
        pp = paper.get(cfg, {}).get('params_m') if not opts else paper[cfg]['params_m']
        pg = paper.get(cfg, {}).get('flops_g') if not opts else paper[cfg]['flops_g']
        n, g = m['params'], m['macs'] / 1e9
        print(f'| {label} | {n:,d} | {pp or "-"} | {la.gap(n / 1e6, pp)} | {g:.3f} | '
              f'{pg or "-"} | {la.gap(g, pg)} |')
        progress.step(label)
    print("\nThe paper's 101-layer rows against its 50-layer rows (+17 res4 blocks at 14x14):")
    for r in la.consistency():
        print(f'  {r["network"]:18s} needs {r["need"]:6.1f}{r["unit"]} saved per added block; '
              f'the replaced conv has {r["conv"]:6.1f}{r["unit"]}, our LA-layer saves '
              f'{r["ours"]:6.1f}{r["unit"]}')


def detection_table(la, progress):
    paper = la.paper_figures()
    print('\nDetection backbones of Table 3 (cfg.model.backbone of the Faster R-CNN configs; the '
          'Cascade ones are the same), 800 x 1333, no fc')
    print('| backbone | params | GMACs | vs baseline | paper detector GFLOPs Faster / Cascade | '
          'paper difference |')
    print('|---|---:|---:|---:|---:|---:|')
    ours, papers = {}, {}
    for stem, label in la.DETECTION:
        m = la.measure(la.detection_config(stem), (800, 1333), 'backbone')
        g = ours[label] = m['macs'] / 1e9
        papers[label] = pf, pc = [paper.get(la.detection_config(stem, d), {}).get('flops_g')
                                  for d in ('faster-rcnn', 'cascade-rcnn')]
        diff = diff_paper = ''
        if label.startswith('LA-'):
            ref = label[3:]
            diff = f'{g - ours[ref]:+.1f}'
            diff_paper = f'{pf - papers[ref][0]:+d} / {pc - papers[ref][1]:+d}'
        print(f'| {label} | {m["params"]:,d} | {g:.1f} | {diff} | {pf} / {pc} | {diff_paper} |')
        progress.step(label)


def segmentation_table(la, progress):
    print('\nSegmentation backbones of Table 4 (cfg.model.backbone of the DeepLabV3 configs, '
          'output stride 8), 512 x 512')
    print('| backbone | params | GMACs |')
    print('|---|---:|---:|')
    for stem, label in la.SEGMENTATION:
        m = la.measure(la.segmentation_config(stem), (512, 512), 'backbone')
        print(f'| {label} | {m["params"]:,d} | {m["macs"] / 1e9:.1f} |')
        progress.step(label)


def all_params(configs, progress):
    from mmattn.analysis import count_params
    from mmattn.analysis.ledger import build
    print('\nWhole models (cfg.model) of every config in configs/la_layer/')
    print('| config | params |')
    print('|---|---:|')
    for cfg in configs:
        print(f'| {osp.basename(cfg)} | {count_params(build(cfg, "model"))["params"]:,d} |')
        progress.step(osp.basename(cfg))


def child(op, c, hw, batch, threads):
    """One forward+backward in a fresh process: its peak memory, as JSON on stdout."""
    import torch

    from mmattn.analysis import peak_memory
    from mmattn.analysis.la_complexity import bench_module
    torch.set_num_threads(threads)
    module = bench_module(op, c)
    x = torch.randn(batch, c, hw, hw, requires_grad=True)
    grad = torch.randn(batch, c, hw, hw)
    _, peak = peak_memory(lambda: module(x).backward(grad))
    print(json.dumps(dict(peak=peak)))


def peak_in_child(op, c, hw, batch, threads):
    out = subprocess.run([sys.executable, osp.abspath(__file__), '--child', op, str(c), str(hw),
                          str(batch), str(threads)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=REPO))
    return json.loads(out.stdout.strip().splitlines()[-1])['peak']


def bench(threads, reps, batch=8):
    import torch

    from mmattn.analysis.la_complexity import bench_module, saved_bytes
    torch.set_num_threads(threads)
    print(f'\nOne LALayer (defaults, stride 1) vs the 3x3 conv it replaces (C -> C, no bias), '
          f'batch {batch}, forward+backward, CPU, {threads} thread(s), median of {reps}:')
    print(f'{"map":>6s} {"C":>4s} | {"conv ms":>8s} {"LA ms":>8s} {"ratio":>6s} | '
          f'{"saved MB conv":>13s} {"LA":>7s} {"ratio":>6s} | {"peak MB conv":>12s} {"LA":>7s} '
          f'{"ratio":>6s}')
    for hw, c in ((56, 64), (56, 128), (28, 64), (28, 128)):
        x = torch.randn(batch, c, hw, hw, requires_grad=True)
        grad = torch.randn(batch, c, hw, hw)
        mods = {op: bench_module(op, c) for op in ('conv', 'la')}
        times = {op: [] for op in mods}
        for rep in range(reps + 1):  # the first round warms up; interleaved: load hits both
            for op, mod in mods.items():
                t0 = time.perf_counter()
                mod(x).backward(grad)
                if rep:
                    times[op].append(time.perf_counter() - t0)
        ms = {op: sorted(t)[len(t) // 2] * 1e3 for op, t in times.items()}
        saved = {op: saved_bytes(mod, x) / 2**20 for op, mod in mods.items()}
        pk = {op: peak_in_child(op, c, hw, batch, threads) / 2**20 for op in mods}
        print(f'{hw:>4d}^2 {c:>4d} | {ms["conv"]:8.1f} {ms["la"]:8.1f} '
              f'{ms["la"] / ms["conv"]:6.1f} | {saved["conv"]:13.1f} {saved["la"]:7.1f} '
              f'{saved["la"] / saved["conv"]:6.1f} | {pk["conv"]:12.1f} {pk["la"]:7.1f} '
              f'{pk["la"] / pk["conv"]:6.1f}')
    print('saved: bytes autograd keeps for backward (input included, weights excluded); peak: '
          'resident memory of one forward+backward in a fresh process above the state before '
          'it (inputs and weights excluded; includes gradients and transients).')


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    if args.child:
        op, *nums = args.child
        return child(op, *map(int, nums))
    from mmattn.analysis import Progress, quiet
    quiet(args.verbose)
    from mmattn.analysis import la_complexity as la
    configs = sorted(f'{la.CFG_DIR}/{p}' for p in os.listdir(osp.join(REPO, la.CFG_DIR))
                     if p.endswith('.py') and not p.startswith('_')) if args.all else []
    total = (len(la.IMAGENET) + len(la.ALTERNATIVES) + len(la.DETECTION) * args.det
             + len(la.SEGMENTATION) * args.seg + len(configs))
    progress = Progress(total, 'measured', stream=sys.stderr)
    imagenet_tables(la, progress)
    if args.det:
        detection_table(la, progress)
    if args.seg:
        segmentation_table(la, progress)
    if configs:
        all_params(configs, progress)
    if args.bench:
        bench(args.threads, args.reps)


if __name__ == '__main__':
    main()
