"""Training cost of every backbone, side by side: forward+backward time and peak memory, as
ratios to ResNet-50.

    python tools/analysis_tools/benchmark.py [--sizes 224 1024 1333x800]
        [--models resnet50 lesa_r50 aa_r50@explicit ...] [--repeats 3] [--repeats-large 1]
        [--quick] [--device cpu|cuda] [--budget 300] [--threads N] [--json FILE]
        [--markdown FILE] [--attention]

Backbones (``--models`` = ``--backbones``, default: all; ``NAME@explicit`` / ``NAME@fused``
runs LESA and AA on that attention path instead of the default ``auto``): every backbone is
built from our configs, ``model.backbone`` with nothing loaded:

* at 224x224 (ImageNet) the backbone of the ImageNet config (all stages train, BatchNorm in
  training mode, the last stage's feature map out);
* at detection sizes the backbone of a detection config (stem and stage 1 frozen, BatchNorm in
  eval mode, four feature maps out, as mmdet trains it); MRLA-base, which has no detection
  config, gets its ImageNet backbone with those three settings, and the EA plugin, which has
  no ImageNet config, its detection backbone with the ImageNet settings at 224. Static LESA,
  which has ImageNet configs only, is the LESA detection backbone with ``fusion='static'``.
  EAMLP-7 (an isotropic T2T-ViT-style classifier backbone trained at 384) runs at every size
  as built from its ImageNet config (its position table is resized to the input).

Sizes (``--sizes``): ``224`` = 224x224, batch 8; ``1024`` = 1024x1024, batch 1; ``1333x800`` =
800x1344, batch 1 (a 1333x800 image resized keeping its ratio, padded to a multiple of 32 as
mmdet's data preprocessor does); or ``HEIGHTxWIDTH/BATCH``, e.g. ``64x64/2``.

Time: all backbones of one size are built in one worker process; after a warm-up step each,
``--repeats`` rounds (``--repeats-large`` for sizes above 224x224) run one forward+backward
(loss = sum of the output means) of every backbone in turn, so a change of machine load hits
all of them alike: the ratios to ResNet-50 are what counts on a shared machine. The median
per backbone is reported. ``--clock cpu`` times each step by the worker's CPU time (user +
system) instead of the wall clock: on a machine whose other jobs take the cores (a niced
benchmark gets a sliver of them), elapsed time measures the scheduler, CPU time still
measures the step (valid with ``--threads 1``). A backbone whose warm-up step takes longer
than ``--budget`` seconds (CPU seconds with ``--clock cpu``) is stopped and skipped with a
message.

Memory: each case runs again in a fresh process (forked from a parent that has imported but
computed nothing). On CPU, after the model and the input are built, the peak-RSS counter is
reset (``/proc/self/clear_refs``; ``ru_maxrss`` reads the same high-water mark) and the peak
RSS reached during one forward+backward minus the RSS before it is reported: activations kept
for backward, gradients, transients (read from ``VmHWM`` in ``/proc/self/status``). A fresh
process per case matters: in a process that ran other models, memory freed by them sits in the
allocator's free lists and is reused without raising the RSS, and tracemalloc does not see
torch's allocations at all. On CUDA: ``torch.cuda.max_memory_allocated`` minus the
allocation before the step.

``--attention`` also runs tools/analysis_tools/benchmark_attention.py (single LESA and AA
blocks, explicit against fused) with the same ``--repeat`` and ``--device``.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# name: (label, ImageNet config, detection config, overrides of the backbone at detection sizes)
DET_SETTINGS = dict(frozen_stages=1, norm_eval=True, out_indices=(0, 1, 2, 3))
# static LESA has ImageNet configs only: at detection sizes it is the LESA detection backbone
# with the static fusion (the one setting the two ImageNet configs differ in)
STATIC_FUSION = dict(_fusion='static')
BACKBONES = {
    'resnet50': ('ResNet-50', 'configs/lesa/resnet50_4xb32-cos-90e_in1k.py',
                 'configs/la_layer/faster-rcnn_r50_fpn_ms-range-1x_coco.py', {}),
    'resnext50': ('ResNeXt-50 (32x4d)',
                  'configs/la_layer/resnext50-32x4d_8xb64-warmup-coslr_in1k.py',
                  'configs/la_layer/faster-rcnn_x50-32x4d_fpn_ms-range-1x_coco.py', {}),
    'wrn50': ('WRN-50-2', 'configs/lesa/wrn50_4xb32-cos-90e_in1k.py',
              'configs/lesa/mask-rcnn_wrn50_fpn_1x_coco.py', {}),
    'lesa_r50': ('LESA-R50', 'configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py',
                 'configs/lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py', {}),
    'sa_r50': ('SA-R50', 'configs/lesa/sa-r50_4xb32-cos-90e_in1k.py',
               'configs/lesa/mask-rcnn_sa-r50_fpn_1x_coco.py', {}),
    'static_lesa_r50': ('static-LESA-R50', 'configs/lesa/static-lesa-r50_4xb32-cos-90e_in1k.py',
                        'configs/lesa/mask-rcnn_lesa-r50_fpn_1x_coco.py', STATIC_FUSION),
    'lesa_wrn50': ('LESA-WRN50', 'configs/lesa/lesa-wrn50_4xb32-cos-90e_in1k.py',
                   'configs/lesa/mask-rcnn_lesa-wrn50_fpn_1x_coco.py', {}),
    'sa_wrn50': ('SA-WRN50', 'configs/lesa/sa-wrn50_4xb32-cos-90e_in1k.py',
                 'configs/lesa/mask-rcnn_sa-wrn50_fpn_1x_coco.py', {}),
    'static_lesa_wrn50': ('static-LESA-WRN50',
                          'configs/lesa/static-lesa-wrn50_4xb32-cos-90e_in1k.py',
                          'configs/lesa/mask-rcnn_lesa-wrn50_fpn_1x_coco.py', STATIC_FUSION),
    'aa_r50': ('AA-R50', 'configs/aa/aa-r50_8xb32-100e_in1k.py',
               'configs/aa/retinanet_aa-r50_fpn_1x_coco.py', {}),
    'la_r50': ('LA-R50', 'configs/la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py',
               'configs/la_layer/faster-rcnn_la-r50_fpn_ms-range-1x_coco.py', {}),
    'la_x50': ('LA-X50 (32x4d)', 'configs/la_layer/la-resnext50-32x4d_8xb64-warmup-coslr_in1k.py',
               'configs/la_layer/faster-rcnn_la-x50-32x4d_fpn_ms-range-1x_coco.py', {}),
    'mrla_light_r50': ('MRLA-light-R50', 'configs/mrla/mrla-light-r50_8xb32_in1k.py',
                       'configs/mrla/faster-rcnn_mrla-light-r50_fpn_1x_coco.py', {}),
    'mrla_base_r50': ('MRLA-base-R50', 'configs/mrla/mrla-base-r50_8xb32_in1k.py',
                      'configs/mrla/mrla-base-r50_8xb32_in1k.py', DET_SETTINGS),
    'ea_r50': ('EA-plugin R50 (c4, c5)',
               'configs/external_attention/mask-rcnn_r50-ea-c4-c5_fpn_1x_coco.py',
               'configs/external_attention/mask-rcnn_r50-ea-c4-c5_fpn_1x_coco.py', {}),
    # an isotropic classifier backbone (T2T-ViT-7 layout, trained at 384): run at every size
    # as it is (its position table is resized to the input), one cls-token output
    'eamlp7': ('EAMLP-7', 'configs/external_attention/eamlp-7_8xb64_in1k-384px.py',
               'configs/external_attention/eamlp-7_8xb64_in1k-384px.py', {}),
}
# the EA plugin has no ImageNet config: at 224 its detection backbone gets the ImageNet settings
CLS_OVERRIDES = {'ea_r50': dict(frozen_stages=-1, norm_eval=False, out_indices=(3, ))}
# the operators with two attention paths: their explicit path runs as an extra case
EXPLICIT_VARIANTS = ('lesa_r50@explicit', 'sa_r50@explicit', 'aa_r50@explicit')
DEFAULT_BACKBONES = list(BACKBONES) + list(EXPLICIT_VARIANTS)
BASELINE = 'resnet50'
SIZE_PRESETS = {'224': (224, 224, 8), '1024': (1024, 1024, 1), '1333x800': (800, 1344, 1)}
# (B, heads, HW, HW) fp32 tensors per explicit attention layer at the peak of a backbone's
# forward+backward: LESA-R50 [explicit] at 800x1344 (6 layers of 8 x 4200^2) peaked at 13.0 GiB
EXPLICIT_TENSORS_PER_LAYER = 4


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


def size_name(size):
    h, w, b = size
    return f'{h}x{w}/{b}'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', nargs='+', default=['224'],
                   help='presets 224, 1024, 1333x800 or HEIGHTxWIDTH/BATCH (default: 224)')
    p.add_argument('--backbones', '--models', nargs='+', default=DEFAULT_BACKBONES,
                   help='names (NAME@explicit|@fused for an attention path); default: all '
                   f'({", ".join(DEFAULT_BACKBONES)})')
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
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help='wall: elapsed time; cpu: the worker\'s CPU time per step (user + '
                   'system), for a shared machine whose other jobs take the cores (use with '
                   '--threads 1; CUDA always uses wall)')
    p.add_argument('--no-memory', action='store_true', help='time only')
    p.add_argument('--json', default=None, help='also write the results here')
    p.add_argument('--markdown', default=None,
                   help='also write a markdown section (command, machine, date, table) here')
    p.add_argument('--attention', action='store_true',
                   help='also run benchmark_attention.py (single blocks, explicit vs fused)')
    args = p.parse_args(argv)
    args.sizes = [parse_size(s) for s in args.sizes]
    for name in args.backbones:
        base, _, impl = name.partition('@')
        if base not in BACKBONES or impl not in ('', 'auto', 'explicit', 'fused'):
            p.error(f'unknown backbone {name!r}; choose from {", ".join(BACKBONES)} '
                    '(optionally @explicit / @fused)')
    if BASELINE not in args.backbones:
        args.backbones = [BASELINE] + args.backbones  # the ratios need it
    if args.threads is None and not str(args.device).startswith('cuda'):
        args.threads = 1
    if str(args.device).startswith('cuda'):
        args.clock = 'wall'
    if args.quick:
        args.repeat = args.repeat_large = 1
        args.budget = min(args.budget, 120.0)
    return args


# ----------------------------------------------------------------------------------------------
# one case (runs in a worker)
# ----------------------------------------------------------------------------------------------
def _setup(threads):
    sys.path.insert(0, REPO)
    import warnings
    warnings.filterwarnings('ignore')
    import torch

    import mmattn  # noqa: F401
    import mmattn.models.layers.aa_conv  # noqa: F401  (harmless once registered)
    import mmattn.models.layers.lesa  # noqa: F401
    from mmattn.apis.runner import _register
    for lib in ('mmpretrain', 'mmdet', 'mmseg'):
        _register(lib)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('ERROR')
    if threads:
        torch.set_num_threads(threads)


def build_backbone(name, size):
    """The backbone for ``name`` (without ``@impl``) at ``size``, on the CPU, train mode."""
    from mmengine.config import Config

    from mmattn.apis import build_model_from_cfg
    _, cls_cfg, det_cfg, det_over = BACKBONES[name]
    detection = size[0] > 224 or size[1] > 224
    cfg = Config.fromfile(osp.join(REPO, det_cfg if detection else cls_cfg))
    bb = cfg.model.backbone
    bb.pop('init_cfg', None)
    over = dict(det_over if detection else CLS_OVERRIDES.get(name, {}))
    fusion = over.pop('_fusion', None)
    bb.update(over)
    if fusion:  # every LESA of the backbone gets this fusion
        bb.stage_ops = tuple(None if op is None else dict(op, fusion=fusion)
                             for op in bb.stage_ops)
    model = build_model_from_cfg(cfg, 'backbone')
    model.train()
    return model


class _Budget(Exception):
    pass


_TIMER = [signal.ITIMER_REAL, signal.SIGALRM]


def _alarm(seconds, clock='wall'):
    """Raises _Budget after ``seconds`` of wall time, or of CPU time with ``clock='cpu'``."""
    _TIMER[:] = ([signal.ITIMER_PROF, signal.SIGPROF] if clock == 'cpu'
                 else [signal.ITIMER_REAL, signal.SIGALRM])

    def handler(signum, frame):
        raise _Budget()
    signal.signal(_TIMER[1], handler)
    signal.setitimer(_TIMER[0], max(seconds, 0.001))


def _disarm():
    signal.setitimer(_TIMER[0], 0)


def make_step(name, size, device):
    import torch

    from mmattn.models.layers.attention import default_attn_impl
    base, _, impl = name.partition('@')
    model = build_backbone(base, size).to(device)
    h, w, b = size
    torch.manual_seed(0)
    x = torch.randn(b, 3, h, w, device=device)

    def step():
        for p in model.parameters():
            p.grad = None
        with default_attn_impl(impl or 'auto'):
            outs = model(x)
        outs = outs if isinstance(outs, (tuple, list)) else (outs, )
        sum(o.float().mean() for o in outs).backward()

    def release():  # the time worker holds every backbone: keep only their weights
        for p in model.parameters():
            p.grad = None
    step.release = release
    return model, step


def _step_within(step, budget, clock, device):
    """One step, synchronised, interrupted by ``_Budget`` after ``budget`` seconds."""
    _alarm(budget, clock)
    try:
        step()
        _sync(device)
    finally:
        _disarm()


def _sync(device):
    import torch
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def time_worker(conn, names, size, device, repeat, budget, threads, clock='wall'):
    """Builds every backbone of one size, warms each up, then interleaved timed rounds."""
    # wall: elapsed time; cpu: CPU time of this process (user + system), which on a shared,
    # loaded machine counts the step's own work and not the time the scheduler gave to others
    # (sound with one torch thread; with several it adds up the threads' time)
    now = time.process_time if clock == 'cpu' else time.perf_counter
    try:
        _setup(threads)
        steps, times, warmups = {}, {}, {}
        for name in names:
            try:
                _, step = make_step(name, size, device)
                _sync(device)
                t0 = now()
                _step_within(step, budget, clock, device)
                warm = now() - t0
                step.release()
                steps[name], times[name], warmups[name] = step, [], warm
                conn.send(dict(name=name, event='warm', seconds=warm))
            except _Budget:
                conn.send(dict(name=name, event='skipped',
                               reason=f'warm-up step over the {budget:g} s budget'))
            except Exception as e:  # noqa: BLE001  (reported, the others go on)
                conn.send(dict(name=name, event='error', reason=f'{type(e).__name__}: {e}'[:300]))
        for _ in range(repeat):
            for name, step in steps.items():
                _sync(device)
                t0 = now()
                step()
                _sync(device)
                times[name].append(now() - t0)
                step.release()
        for name, t in times.items():
            # --repeat 0: the warm-up step is the figure (for cases of minutes per step)
            conn.send(dict(name=name, event='time', runs=len(t),
                           seconds=statistics.median(t) if t else warmups[name]))
    finally:
        conn.send(dict(event='done'))
        conn.close()


def _status_bytes(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    return None


def memory_worker(conn, name, size, device, budget, threads, clock='wall'):
    """One forward+backward of one backbone in a fresh process: its peak memory growth."""
    try:
        _setup(threads)
        import torch
        _, step = make_step(name, size, device)
        cuda = str(device).startswith('cuda')
        if cuda:
            _sync(device)
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            before = _status_bytes('VmRSS')
            try:  # reset the high-water mark that VmHWM and ru_maxrss report
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')
                reset = True
            except OSError:
                reset = False
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        _step_within(step, budget, clock, device)
        if cuda:
            peak = torch.cuda.max_memory_allocated()
        elif reset:
            # the mm high-water mark, what ru_maxrss reports, here since the reset
            peak = _status_bytes('VmHWM')
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        conn.send(dict(name=name, event='memory', bytes=peak - before))
    except _Budget:
        conn.send(dict(name=name, event='skipped', reason=f'over the {budget:g} s budget'))
    except Exception as e:  # noqa: BLE001
        conn.send(dict(name=name, event='error', reason=f'{type(e).__name__}: {e}'[:300]))
    finally:
        conn.close()


# ----------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------
def _context():
    import multiprocessing as mp
    # fork: the children start with everything imported (the parent computes nothing, so no
    # thread pool exists yet); spawn where fork is unavailable
    return mp.get_context('fork' if 'fork' in mp.get_all_start_methods() else 'spawn')


def explicit_estimate_gib(name, size):
    """Rough peak of the explicit path's ``(HW)^2`` attention tensors, 0 where it does not
    apply: ``EXPLICIT_TENSORS_PER_LAYER`` (B, 8 heads, HW, HW) fp32 tensors for every attention
    layer at the largest attention resolution (each keeps its logits for backward)."""
    base, _, impl = name.partition('@')
    if impl != 'explicit' or not base.startswith(('lesa_', 'sa_', 'static_lesa_', 'aa_')):
        return 0.0
    h, w, b = size
    detection = h > 224 or w > 224
    if base.startswith('aa_'):  # stage 2 (4 blocks) at stride 8, the first after its 3x3/2 pooling
        stride, layers = 8, 4
    elif detection:  # layer3[1:] and the stride-2 layer4[0] at stride 16
        stride, layers = 16, 6
    else:  # layer3[1:] and layer4 (stride 1) at stride 16
        stride, layers = 16, 8
    L = -(-h // stride) * -(-w // stride)
    return EXPLICIT_TENSORS_PER_LAYER * layers * b * 8 * L * L * 4 / 2**30


def repeats_for(args, size):
    large = size[0] > 224 or size[1] > 224
    return args.repeat_large if large and args.repeat_large is not None else args.repeat


def run(args, log=print, partial=None):
    """{size name: {backbone: result dict}}; ``partial(results)`` after every size."""
    ctx = _context()
    results = {}
    args.size_info = {}
    for size in args.sizes:
        sname = size_name(size)
        repeat = repeats_for(args, size)
        info = args.size_info[sname] = dict(repeats=repeat, load_start=_load(),
                                            started=time.time())
        res = {name: dict(name=name) for name in args.backbones}
        names = []
        for name in args.backbones:
            est = explicit_estimate_gib(name, size)
            if est > args.max_gib:
                res[name]['skipped'] = (f'explicit attention estimated at {est:.0f} GiB > '
                                        f'--max-gib {args.max_gib:g}')
                log(f'[{sname}] {name}: skipped, {res[name]["skipped"]}')
            else:
                names.append(name)
        log(f'[{sname}] timing {len(names)} backbones (warm-up, then {repeat} interleaved '
            'rounds) ...')
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=time_worker, args=(child, names, size, args.device,
                                                     repeat, args.budget, args.threads,
                                                     args.clock))
        proc.start()
        child.close()
        while True:
            try:
                msg = parent.recv()
            except EOFError:
                break
            if msg['event'] == 'done':
                break
            r = res[msg['name']]
            if msg['event'] == 'warm':
                r['warmup'] = msg['seconds']
                log(f'[{sname}] {msg["name"]}: warm-up {msg["seconds"]:.1f} s')
            elif msg['event'] == 'time':
                r['time'], r['runs'] = msg['seconds'], msg['runs']
            else:
                r['skipped' if msg['event'] == 'skipped' else 'error'] = msg['reason']
                log(f'[{sname}] {msg["name"]}: {msg["event"]}: {msg["reason"]}')
        proc.join()
        if not args.no_memory:
            for name in names:
                if 'time' not in res[name]:
                    continue
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=memory_worker, args=(child, name, size, args.device,
                                                               args.budget, args.threads,
                                                               args.clock))
                proc.start()
                child.close()
                try:
                    msg = parent.recv()
                except EOFError:
                    msg = dict(event='error', reason=f'worker died (exit {proc.exitcode})')
                proc.join()
                if msg['event'] == 'memory':
                    res[name]['peak'] = msg['bytes']
                    log(f'[{sname}] {name}: peak {msg["bytes"] / 2**20:.0f} MiB')
                else:
                    res[name]['memory_error'] = msg['reason']
                    log(f'[{sname}] {name}: memory {msg["event"]}: {msg["reason"]}')
        base = res.get(BASELINE, {})
        for r in res.values():
            if 'time' in r and base.get('time'):
                r['time_ratio'] = r['time'] / base['time']
            if 'peak' in r and base.get('peak'):
                r['peak_ratio'] = r['peak'] / base['peak']
        results[sname] = res
        info.update(load_end=_load(), seconds=round(time.time() - info.pop('started')))
        if partial:
            partial(results)
    return results


def _load():
    try:
        return ' '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:
        return 'n/a'


def ratio_table(results, markdown=True):
    """One row per backbone, time and peak-memory ratios to ResNet-50 at every size."""
    sizes = list(results)
    names = []
    for res in results.values():
        names += [n for n in res if n not in names]
    head = ['backbone'] + [f'{s} {k}' for s in sizes for k in ('time/R50', 'peak/R50')]
    lines = []
    if markdown:
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|---|' + '---:|' * (len(head) - 1))
    else:
        lines.append(f'{head[0]:<30}' + ''.join(f' {h:>20}' for h in head[1:]))
    for name in names:
        cells = []
        for s in sizes:
            r = results[s].get(name, {})
            cells.append(f'{r["time_ratio"]:.2f}' if 'time_ratio' in r else '-')
            cells.append(f'{r["peak_ratio"]:.2f}' if 'peak_ratio' in r else '-')
        if markdown:
            lines.append(f'| {label(name)} | ' + ' | '.join(cells) + ' |')
        else:
            lines.append(f'{label(name):<30}' + ''.join(f' {c:>20}' for c in cells))
    return '\n'.join(lines)


def label(name):
    base, _, impl = name.partition('@')
    return BACKBONES[base][0] + (f' [{impl}]' if impl else '')


def format_table(results, markdown=False):
    lines = []
    head = ('backbone', 'size (HxW/batch)', 'time (s)', 'time / R50', 'peak (MiB)',
            'peak / R50', 'note')
    if markdown:
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|---|---|---:|---:|---:|---:|---|')
    else:
        lines.append(f'{head[0]:<30} {head[1]:>16} {head[2]:>9} {head[3]:>10} {head[4]:>10} '
                     f'{head[5]:>10}  {head[6]}')
    for sname, res in results.items():
        for name, r in res.items():
            t = f'{r["time"]:.3f}' if 'time' in r else '-'
            tr = f'{r["time_ratio"]:.2f}' if 'time_ratio' in r else '-'
            m = f'{r["peak"] / 2**20:.0f}' if 'peak' in r else '-'
            mr = f'{r["peak_ratio"]:.2f}' if 'peak_ratio' in r else '-'
            note = r.get('skipped') or r.get('error') or r.get('memory_error') or ''
            if note and 'skipped' in r:
                note = 'skipped: ' + note
            if r.get('runs') == 0:
                note = 'one step (the warm-up): ' * bool(note) + (note or 'one step (the warm-up)')
            if markdown:
                lines.append(f'| {label(name)} | {sname} | {t} | {tr} | {m} | {mr} | {note} |')
            else:
                lines.append(f'{label(name):<30} {sname:>16} {t:>9} {tr:>10} {m:>10} {mr:>10}'
                             f'  {note}')
    return '\n'.join(lines)


def machine_info(device):
    import torch
    info = dict(date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
                python=platform.python_version(), torch=torch.__version__,
                threads=torch.get_num_threads(), nproc=os.cpu_count(), device=device)
    try:
        info['cpu'] = next(line.split(':', 1)[1].strip()
                           for line in subprocess.run(['lscpu'], capture_output=True,
                                                      text=True).stdout.splitlines()
                           if line.startswith('Model name'))
    except (OSError, StopIteration):
        info['cpu'] = platform.processor()
    info['load'] = _load()
    if str(device).startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
    start = machine_info(args.device)
    t0 = time.time()
    command = 'python tools/analysis_tools/benchmark.py ' + ' '.join(
        a if ' ' not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))

    def header(end_load):
        return (f'{start["date"]}, {start["cpu"]}, nproc {start["nproc"]}, torch '
                f'{start["torch"]} (torch threads: {start["threads"]}), device {args.device}, '
                f'{args.clock} clock'
                + (f' ({start["gpu"]})' if 'gpu' in start else '')
                + f'; load average (1/5/15 min) {start["load"]} at the start, {end_load} at the '
                f'end; {time.time() - t0:.0f} s')

    def write(results, final=False):
        end_load = _load()
        sizes = '; '.join(f'{k}: {v["repeats"]} timed round(s), load {v["load_start"]} -> '
                          f'{v["load_end"]}, {v["seconds"]} s'
                          for k, v in args.size_info.items())
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(machine=start, end_load=end_load, command=command,
                               sizes=args.size_info, complete=final, results=results), f,
                          indent=1)
        if args.markdown:
            with open(args.markdown, 'w') as f:
                f.write(f'`{command}`\n\n{header(end_load)}\n\nPer size: {sizes}\n\n'
                        + ('' if final else '(partial: the run is still going)\n\n')
                        + f'Ratios to ResNet-50:\n\n{ratio_table(results)}\n\n'
                        f'Absolute figures:\n\n{format_table(results, markdown=True)}\n')
        return end_load

    results = run(args, log=lambda m: print(m, flush=True), partial=write)
    end_load = write(results, final=True)
    print()
    print(header(end_load))
    print(format_table(results))
    print()
    print('Ratios to ResNet-50:')
    print(ratio_table(results, markdown=False))
    if args.attention:
        print('\nSingle attention blocks (tools/analysis_tools/benchmark_attention.py):',
              flush=True)
        subprocess.run([sys.executable, osp.join(osp.dirname(osp.abspath(__file__)),
                                                 'benchmark_attention.py'),
                        '--repeat', str(max(args.repeat, 1)), '--device', args.device,
                        '--max-gib', str(args.max_gib)]
                       + (['--threads', str(args.threads)] if args.threads else []),
                       cwd=REPO, check=False)
    return results


if __name__ == '__main__':
    main()
