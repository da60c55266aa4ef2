"""Parameters and multiply-adds of LA-ResNet(-Xt) against the LA-layer paper (Tables 1-2).

Placement (paper Sec. 3.2 and Table 1): every bottleneck's 3x3 conv, in all blocks of all four
stages (res2-res5), becomes an LALayer with the conv's width, stride and groups; the 7x7 stem,
the 1x1 convs, the downsample shortcuts, BN and the fc layer are unchanged. The networks are
counted without building a backbone: convs, BN and fc analytically (mmdet's ResNet/ResNeXt,
pytorch style, stride on the 3x3 conv), each LALayer by instantiating it (parameters) and by
``LALayer.flops`` (multiply-adds, the paper's convention: convs and products; no BN, ReLU,
pooling, softmax or bilinear interpolation). Input 224 x 224.

``--bench`` times forward + backward of one LALayer against the 3x3 conv it replaces (batch 8,
side by side in one process) and measures their memory: the bytes autograd keeps for backward
(exact) and the peak resident memory of one forward + backward in a fresh process.

    python tools/analysis_tools/la_layer_complexity.py [--bench] [--threads 1]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from mmattn.models.layers.la_layer import LALayer  # noqa: E402

STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# name: (depth, groups, base_width)
NETWORKS = {
    'ResNet-50': (50, 1, 64),
    'ResNeXt-50 (32x4d)': (50, 32, 4),
    'ResNet-101': (101, 1, 64),
    'ResNeXt-101 (32x4d)': (101, 32, 4),
}
# The paper's figures: (params M, GFLOPs = GMACs). Table 1 (50-layer) and Table 2.
PAPER = {
    ('ResNet-50', False): (25.5, 4.1),
    ('ResNet-50', True): (21.0, 3.4),
    ('ResNeXt-50 (32x4d)', False): (25.0, 4.2),
    ('ResNeXt-50 (32x4d)', True): (24.2, 4.2),
    ('ResNet-101', False): (44.6, 7.9),
    ('ResNet-101', True): (35.9, 5.7),
    ('ResNeXt-101 (32x4d)', False): (44.2, 8.0),
    ('ResNeXt-101 (32x4d)', True): (39.5, 7.6),
}


def conv_cost(cin, cout, k, out_hw, groups=1):
    params = cin // groups * cout * k * k
    return params, params * out_hw


def count_network(depth, groups, base_width, la_cfg=None, size=224, la_groups=None):
    """(params, MACs, sampling MACs) of a (LA-)ResNet/ResNeXt; la_cfg None = plain conv.

    ``la_groups`` overrides the groups the LA-layer gets (default: the replaced conv's).
    """
    params = macs = sampling = 0

    def add(pm):
        nonlocal params, macs
        params += pm[0]
        macs += pm[1]

    h = math.ceil(size / 2)  # stem: 7x7 conv stride 2, BN
    add(conv_cost(3, 64, 7, h * h))
    params += 2 * 64
    h = math.ceil(h / 2)  # 3x3 max pool stride 2
    inplanes = 64
    la_cache = {}
    for i, blocks in enumerate(STAGE_BLOCKS[depth]):
        planes = 64 * 2**i
        width = planes if groups == 1 else math.floor(planes * base_width / 64) * groups
        out = planes * 4
        for j in range(blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            ho = math.ceil(h / stride)
            add(conv_cost(inplanes, width, 1, h * h))  # conv1 + BN
            params += 2 * width
            if la_cfg is None:
                add(conv_cost(width, width, 3, ho * ho, groups))
            else:
                key = (width, stride, h)
                if key not in la_cache:
                    layer = LALayer(width, width, 3, stride, 1, 1, la_groups or groups, False,
                                    **la_cfg)
                    parts = layer.flops_breakdown(h, h)
                    la_cache[key] = (sum(p.numel() for p in layer.parameters()),
                                     parts['total'], parts['sampling'])
                p, m, smp = la_cache[key]
                params, macs, sampling = params + p, macs + m, sampling + smp
            params += 2 * width  # norm2 follows the LA-layer as it followed the conv
            add(conv_cost(width, out, 1, ho * ho))  # conv3 + BN
            params += 2 * out
            if j == 0:  # downsample: 1x1 conv (stride) + BN
                add(conv_cost(inplanes, out, 1, ho * ho))
                params += 2 * out
            inplanes, h = out, ho
    add((2048 * 1000 + 1000, 2048 * 1000))  # fc
    return params, macs, sampling


def gap(ours, paper):
    return f'{100 * (ours - paper) / paper:+.1f}%'


def complexity_table():
    rows = []
    for name, (depth, groups, width) in NETWORKS.items():
        for la in (False, True):
            p, m, s = count_network(depth, groups, width, {} if la else None)
            rows.append(((('LA-' if la else '') + name), p, m, s, PAPER[(name, la)]))
    main_rows = len(rows)
    # Other readings, to show what the defaults rule out.
    alternatives = [
        ('LA-ResNet-50, stride_mode=pool_after', 'ResNet-50', dict(stride_mode='pool_after'),
         None),
        ('LA-ResNet-50, offset_hidden_ratio=1', 'ResNet-50', dict(offset_hidden_ratio=1.0),
         None),
        ('LA-ResNeXt-50, LA-layer with groups=1', 'ResNeXt-50 (32x4d)', {}, 1),
    ]
    for label, name, cfg, la_groups in alternatives:
        p, m, s = count_network(*NETWORKS[name], cfg, la_groups=la_groups)
        rows.append((label, p, m, s, PAPER[(name, True)]))

    head = (f'{"network (224x224)":42s} {"params M":>9s} {"paper":>7s} {"gap":>7s}  '
            f'{"GMACs":>6s} {"paper":>6s} {"gap":>7s}  {"+bilinear":>9s}')
    print('Every bottleneck 3x3 conv of res2-res5 replaced (all blocks); "paper" = the '
          "paper's Table 1/2 figure.")
    print(head)
    print('-' * len(head))
    for i, (label, p, m, s, (pp, pm)) in enumerate(rows):
        if i == main_rows:
            print('-- other readings (not defaults) --')
        extra = f'{(m + s) / 1e9:9.3f}' if s else ''
        print(f'{label:42s} {p / 1e6:9.3f} {pp:7.1f} {gap(p / 1e6, pp):>7s}  {m / 1e9:6.3f} '
              f'{pm:6.1f} {gap(m / 1e9, pm):>7s}  {extra}')
    print('GMACs: convs + fc + LA products (q.k~ and the weighted sum), the convention that gives '
          "ResNet-50 4.09G; '+bilinear' adds 4 MACs per bilinear sample and channel.")
    _consistency_note()


def _consistency_note():
    """The 101-layer rows of Table 2 against the 50-layer rows of Table 1.

    A 101-layer net is its 50-layer sibling plus 17 res4 blocks (14 x 14), so the paper's
    extra saving divided by 17 is what each added res4 LA-layer must save.
    """
    print("\nThe paper's 101-layer rows against its 50-layer rows (+17 res4 blocks at 14x14):")
    for name50, name101, width, groups in (('ResNet-50', 'ResNet-101', 256, 1),
                                           ('ResNeXt-50 (32x4d)', 'ResNeXt-101 (32x4d)', 512,
                                            32)):
        layer = LALayer(width, width, groups=groups)
        conv_p, conv_m = conv_cost(width, width, 3, 14 * 14, groups)
        ours = (conv_p - sum(p.numel() for p in layer.parameters()), conv_m - layer.flops(14, 14))
        # Paper figures are in M params / G MACs; per block we print k params / M MACs.
        for i, (unit, divisor) in enumerate((('k params', 1e3), ('M MACs', 1e6))):
            d50 = PAPER[(name50, False)][i] - PAPER[(name50, True)][i]
            d101 = PAPER[(name101, False)][i] - PAPER[(name101, True)][i]
            need = (d101 - d50) / 17 * 1e3
            conv = (conv_p, conv_m)[i] / divisor
            print(f'  {name101:20s} needs {need:6.1f}{unit} saved per added block; the replaced '
                  f'conv has {conv:6.1f}{unit}, our LA-layer saves {ours[i] / divisor:6.1f}'
                  f'{unit}')
    print('  LA-ResNeXt-101 would have to save more than the whole grouped conv (parameters and '
          'MACs), and LA-ResNet-101\'s MACs need a layer cheaper than its q/k/v projections '
          'alone (38.5M): these figures are inconsistent with the 50-layer rows, so their gaps '
          'say little about the layer. LA-ResNet-101\'s parameters agree (247k vs 246k).')


# ------------------------------------------------------------------ benchmark
def _make(op, c, seed=0):
    torch.manual_seed(seed)
    if op == 'conv':
        return nn.Conv2d(c, c, 3, padding=1, bias=False)
    return LALayer(c, c)


def _step(module, x, grad):
    x.grad = None
    module.zero_grad(set_to_none=True)
    module(x).backward(grad)


def _saved_bytes(module, x):
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    del out
    return sum(seen.values())


def _proc_status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{key} not in /proc/self/status')


def _child(op, c, hw, batch, threads):
    """One forward+backward in a fresh process: peak RSS above the state before it.

    A fresh process, because memory freed by an earlier step stays resident in the heap and
    would hide the next step's peak; the high-water mark is reset right before the step
    (``/proc/self/clear_refs``), as a forked child inherits its parent's.
    """
    torch.set_num_threads(threads)
    module = _make(op, c)
    x = torch.randn(batch, c, hw, hw, requires_grad=True)
    grad = torch.randn(batch, c, hw, hw)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = _proc_status('VmRSS')
    _step(module, x, grad)
    print(json.dumps(dict(peak=_proc_status('VmHWM') - before)))


def _peak_rss(op, c, hw, batch, threads):
    out = subprocess.run([
        sys.executable, os.path.abspath(__file__), '--child', op,
        str(c), str(hw), str(batch), str(threads)
    ], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(threads, reps, batch=8):
    torch.set_num_threads(threads)
    print(f'\nOne LALayer (defaults, stride 1) vs the 3x3 conv it replaces (C -> C, no bias), '
          f'batch {batch}, forward+backward, CPU, {threads} thread(s), median of {reps}:')
    head = (f'{"map":>6s} {"C":>4s} | {"conv ms":>8s} {"LA ms":>8s} {"ratio":>6s} | '
            f'{"saved MB conv":>13s} {"LA":>7s} {"ratio":>6s} {"formula":>8s} | '
            f'{"peak MB conv":>12s} {"LA":>7s} {"ratio":>6s}')
    print(head)
    print('-' * len(head))
    for hw, c in ((56, 64), (56, 128), (28, 64), (28, 128)):
        x = torch.randn(batch, c, hw, hw, requires_grad=True)
        grad = torch.randn(batch, c, hw, hw)
        mods = {op: _make(op, c) for op in ('conv', 'la')}
        times = {op: [] for op in mods}
        for op in mods:  # warm-up
            _step(mods[op], x, grad)
        for _ in range(reps):
            for op, mod in mods.items():  # interleaved, so load changes hit both
                t0 = time.perf_counter()
                _step(mod, x, grad)
                times[op].append(time.perf_counter() - t0)
        ms = {op: sorted(t)[len(t) // 2] * 1e3 for op, t in times.items()}
        saved = {op: _saved_bytes(mod, x) / 2**20 for op, mod in mods.items()}
        la = mods['la']
        floats = (c + 3 * c + 2 * 9 * c + la.num_heads * 9 + 2 * la.offset_hidden_channels +
                  2 * 9 + 4)
        formula = floats * 4 * batch * hw * hw / 2**20
        peak = {op: _peak_rss(op, c, hw, batch, threads) for op in mods}
        pk = {op: p['peak'] / 2**20 for op, p in peak.items()}
        print(f'{hw:>4d}^2 {c:>4d} | {ms["conv"]:8.1f} {ms["la"]:8.1f} '
              f'{ms["la"] / ms["conv"]:6.1f} | {saved["conv"]:13.1f} {saved["la"]:7.1f} '
              f'{saved["la"] / saved["conv"]:6.1f} {formula:8.1f} | {pk["conv"]:12.1f} '
              f'{pk["la"]:7.1f} {pk["la"] / pk["conv"]:6.1f}')
    print('saved: bytes autograd keeps for backward (input included, weights excluded); '
          'formula: the LALayer docstring\'s per-pixel count; peak: resident memory of one '
          'forward+backward in a fresh process above the state before it (inputs and '
          'weights excluded; includes gradients and transients).')


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        op, c, hw, batch, threads = sys.argv[2], *map(int, sys.argv[3:7])
        _child(op, c, hw, batch, threads)
        return
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bench', action='store_true', help='also time and measure memory')
    parser.add_argument('--threads', type=int, default=1, help='torch threads for --bench')
    parser.add_argument('--reps', type=int, default=3, help='timed repetitions for --bench')
    args = parser.parse_args()
    complexity_table()
    if args.bench:
        bench(args.threads, args.reps)


if __name__ == '__main__':
    main()
