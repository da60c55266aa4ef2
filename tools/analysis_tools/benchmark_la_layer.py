"""LA-layer cost against the 3x3 conv it replaces, grid_sample path against the fused kernel.

    python tools/analysis_tools/benchmark_la_layer.py [--layer-sizes 64x64/1 50x84/2]
        [--channels 256] [--backbone-sizes 1024x1024/1] [--no-backbone] [--repeat 5]
        [--threads 1] [--quick]

Layer: one ``LALayer(C, C)`` (the defaults) forward+backward against ``nn.Conv2d(C, C, 3,
padding=1)``, with ``sample_impl='grid_sample'`` and ``sample_impl='ext'`` (the compiled
kernel of ``mmattn/ops/csrc/la_attn.cpp``). Backbone: LA-R50 (both paths) against ResNet-50,
the detection backbones of ``mmattn.analysis.bench_cases`` (frozen stem and stage 1, as
tools/analysis_tools/benchmark.py builds them), forward+backward of the sum of the outputs'
means. Times are the process's CPU time per step (robust on a shared machine when run with one
thread), the compared cases interleaved round by round, medians of ``--repeat`` rounds after a
warm-up round. Prints the CPU model, the thread count and, per comparison, lines
``ratio <case> = <x>`` (``--quick``: tiny sizes, two rounds, for a smoke test).
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def parse_size(text):
    try:
        hw, _, batch = text.partition('/')
        h, w = hw.split('x')
        return int(h), int(w), int(batch or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f'size {text!r}: HEIGHTxWIDTH[/BATCH], e.g. 64x64/2')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--layer-sizes', nargs='+', type=parse_size,
                   default=[(64, 64, 1), (50, 84, 2)],
                   help='sizes of the attended map, HxW/BATCH (default: 64x64/1 50x84/2, stage '
                   '3 of a 1024x1024 and a 800x1344 image)')
    p.add_argument('--channels', type=int, default=256, help='C of LALayer(C, C) (default 256)')
    p.add_argument('--backbone-sizes', nargs='+', type=parse_size, default=[(1024, 1024, 1)],
                   help='input sizes of the backbone comparison (default 1024x1024/1)')
    p.add_argument('--no-backbone', action='store_true', help='the layer comparison only')
    p.add_argument('--repeat', type=int, default=5, help='timed rounds (default 5)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes (layer 32 channels at 16x16/1, backbone 64x64/1), 2 rounds')
    args = p.parse_args(argv)
    if args.quick:
        args.layer_sizes, args.channels = [(16, 16, 1)], 32
        args.backbone_sizes, args.repeat = [(64, 64, 1)], 2
    if args.repeat < 1:
        p.error('--repeat must be >= 1')
    return args


def interleaved(cases, repeat):
    """Median CPU seconds per case: one warm-up round, then ``repeat`` rounds, case by case
    (:func:`mmattn.analysis.interleave.interleave`)."""
    from mmattn.analysis.interleave import interleave
    return {name: r['cpu'] for name, r in interleave(cases, repeat).items()}


def fwd_bwd(model, x):
    def step():
        for p in model.parameters():
            p.grad = None
        x.grad = None
        outs = model(x)
        outs = outs if isinstance(outs, (tuple, list)) else (outs, )
        sum(o.float().mean() for o in outs).backward()

    return step


def set_impl(model, impl):
    from mmattn.models.layers.la_layer import LALayer
    n = 0
    for mod in model.modules():
        if isinstance(mod, LALayer):
            mod.sample_impl = impl
            n += 1
    return n


def with_impl(model, impl, step):
    def run():
        set_impl(model, impl)
        step()

    return run


def report(title, med, base):
    print(title)
    for name, t in med.items():
        print(f'  {name:<24} {t * 1e3:10.1f} ms  {t / med[base]:6.2f}x {base}')
    for name, t in med.items():
        if name != base:
            print(f'ratio {title.split(":")[0]} {name}/{base} = {t / med[base]:.3f}')


def main(argv=None):
    args = parse_args(argv)
    from mmattn.analysis import quiet
    from mmattn.analysis.interleave import cpu_model
    quiet(args.verbose)
    import torch

    from mmattn.models.layers.la_layer import LALayer
    from mmattn.ops import ext_available, ext_status
    torch.set_num_threads(args.threads)
    print(f'cpu: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} '
          f'thread(s); {ext_status()}')
    impls = ['grid_sample'] + (['ext'] if ext_available('la_attn_fwd') else [])
    if impls == ['grid_sample']:
        print('the fused kernel is not available: only the grid_sample path is measured')
    c = args.channels
    for h, w, b in args.layer_sizes:
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        la = LALayer(c, c)
        x = torch.randn(b, c, h, w, requires_grad=True)
        cases = {'conv3x3': fwd_bwd(conv, x)}
        for impl in impls:
            cases[f'LALayer[{impl}]'] = with_impl(la, impl, fwd_bwd(la, x))
        report(f'layer-{c}-{h}x{w}/{b}: LALayer({c}, {c}) vs Conv2d({c}, {c}, 3), fwd+bwd',
               interleaved(cases, args.repeat), 'conv3x3')
    if args.no_backbone:
        return
    from mmattn.analysis.bench_cases import build_backbone
    for h, w, b in args.backbone_sizes:
        r50 = build_backbone('resnet50', (h, w, b))
        la_r50 = build_backbone('la_r50', (h, w, b))
        torch.manual_seed(0)
        x = torch.randn(b, 3, h, w)
        cases = {'ResNet-50': fwd_bwd(r50, x)}
        for impl in impls:
            cases[f'LA-R50[{impl}]'] = with_impl(la_r50, impl, fwd_bwd(la_r50, x))
        report(f'backbone-{h}x{w}/{b}: LA-R50 vs ResNet-50 backbone, fwd+bwd',
               interleaved(cases, args.repeat), 'ResNet-50')


if __name__ == '__main__':
    main()
