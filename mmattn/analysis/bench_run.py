"""The backbone benchmark's workers: interleaved timing rounds, peak memory in fresh processes.

Time: all cases of one size are built in one worker process; after a warm-up step each,
``repeat`` rounds run one forward+backward of every case in turn
(:func:`.interleave.run_rounds`: A, B, C, A, B, C, ...), so a change of machine load hits all of
them alike. ``clock='cpu'`` (the tool's default on CPU) times a step by the worker's CPU time
(user + system, ``time.process_time``), sound with one torch thread on a machine whose other
jobs take the cores; the wall-clock median is kept next to it (``wall``). A case whose warm-up
step takes longer than ``budget`` seconds is stopped and skipped. Memory: each case again in a
fresh process forked from a parent that computed nothing (:func:`.memory.peak_memory`).
"""
import signal
import statistics
import time

from .bench_cases import BASELINE, explicit_estimate_gib, make_step
from .cli import Progress
from .interleave import load_average, run_rounds
from .memory import peak_memory


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


def _sync(device):
    if str(device).startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def _step_within(step, budget, clock, device):
    """One step, synchronised, interrupted by ``_Budget`` after ``budget`` seconds."""
    _alarm(budget, clock)
    try:
        step()
        _sync(device)
    finally:
        signal.setitimer(_TIMER[0], 0)


def _setup(threads):
    import torch
    if threads:
        torch.set_num_threads(threads)


def time_worker(conn, names, size, device, repeat, budget, threads, clock='wall'):
    """Builds every case of one size, warms each up, then interleaved timed rounds."""
    now = time.process_time if clock == 'cpu' else time.perf_counter
    try:
        _setup(threads)
        steps, times, warmups = {}, {}, {}
        for name in names:
            try:
                step = make_step(name, size, device)
                _sync(device)
                t0 = now()
                _step_within(step, budget, clock, device)
                warmups[name] = now() - t0
                step.release()
                steps[name], times[name] = step, []
                conn.send(dict(name=name, event='warm', seconds=warmups[name]))
            except _Budget:
                conn.send(dict(name=name, event='skipped',
                               reason=f'warm-up step over the {budget:g} s budget'))
            except Exception as e:  # noqa: BLE001  (reported, the others go on)
                conn.send(dict(name=name, event='error', reason=f'{type(e).__name__}: {e}'[:300]))
        timed = run_rounds(steps, repeat, clock=now, sync=lambda: _sync(device),
                           after=lambda name: steps[name].release())
        for name, t in timed.items():
            if 'error' in t:
                conn.send(dict(name=name, event='error', reason=t['error']))
                continue
            # repeat 0: the warm-up step is the figure (for cases of minutes per step)
            conn.send(dict(name=name, event='time', runs=len(t['cpu']),
                           seconds=statistics.median(t['cpu']) if t['cpu'] else warmups[name],
                           wall=statistics.median(t['wall']) if t['wall'] else None))
    finally:
        conn.send(dict(event='done'))
        conn.close()


def memory_worker(conn, name, size, device, budget, threads, clock='wall'):
    """One forward+backward of one case in a fresh process: its peak memory growth."""
    try:
        _setup(threads)
        step = make_step(name, size, device)
        _, peak = peak_memory(lambda: _step_within(step, budget, clock, device), device)
        conn.send(dict(name=name, event='memory', bytes=peak))
    except _Budget:
        conn.send(dict(name=name, event='skipped', reason=f'over the {budget:g} s budget'))
    except Exception as e:  # noqa: BLE001
        conn.send(dict(name=name, event='error', reason=f'{type(e).__name__}: {e}'[:300]))
    finally:
        conn.close()


def _context():
    import multiprocessing as mp
    # fork: the children start with everything imported (the parent computes nothing, so no
    # thread pool exists yet); spawn where fork is unavailable
    return mp.get_context('fork' if 'fork' in mp.get_all_start_methods() else 'spawn')


def _spawn(ctx, target, *args):
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, ) + args)
    proc.start()
    child.close()
    return parent, proc


def _time_size(ctx, args, size, names, res, log, progress):
    parent, proc = _spawn(ctx, time_worker, names, size, args.device, args.repeats_of(size),
                          args.budget, args.threads, args.clock)
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
            progress.step(f'{msg["name"]}: warm-up {msg["seconds"]:.1f} s')
        elif msg['event'] == 'time':
            r['time'], r['runs'] = msg['seconds'], msg['runs']
            if msg.get('wall') is not None:
                r['wall'] = msg['wall']
        else:
            r['skipped' if msg['event'] == 'skipped' else 'error'] = msg['reason']
            progress.step(f'{msg["name"]}: {msg["event"]}: {msg["reason"]}')
    proc.join()


def _memory_case(ctx, args, size, name, r, progress):
    parent, proc = _spawn(ctx, memory_worker, name, size, args.device, args.budget,
                          args.threads, args.clock)
    try:
        msg = parent.recv()
    except EOFError:
        msg = dict(event='error', reason=f'worker died (exit {proc.exitcode})')
    proc.join()
    if msg['event'] == 'memory':
        r['peak'] = msg['bytes']
        progress.step(f'{name}: peak {msg["bytes"] / 2**20:.0f} MiB')
    else:
        r['memory_error'] = msg['reason']
        progress.step(f'{name}: memory {msg["event"]}: {msg["reason"]}')


def run(args, log=print, partial=None):
    """``{size name: {case: result dict}}``; ``partial(results)`` after every size.

    ``args``: ``sizes`` ((H, W, batch) tuples), ``backbones``, ``device``, ``budget``,
    ``max_gib``, ``threads``, ``clock``, ``no_memory`` and ``repeats_of(size)``.
    """
    ctx = _context()
    results, args.size_info = {}, {}
    for size in args.sizes:
        sname = '{}x{}/{}'.format(*size)
        info = args.size_info[sname] = dict(repeats=args.repeats_of(size),
                                            load_start=load_average(), started=time.time())
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
        log(f'[{sname}] timing {len(names)} backbones (warm-up, then {info["repeats"]} '
            'interleaved rounds), then their memory ...')
        progress = Progress(len(names) * (1 if args.no_memory else 2), f'[{sname}]')
        _time_size(ctx, args, size, names, res, log, progress)
        for name in names if not args.no_memory else ():
            if 'time' in res[name]:
                _memory_case(ctx, args, size, name, res[name], progress)
        base = res.get(BASELINE, {})
        for r in res.values():
            if 'time' in r and base.get('time'):
                r['time_ratio'] = r['time'] / base['time']
            if 'peak' in r and base.get('peak'):
                r['peak_ratio'] = r['peak'] / base['peak']
        results[sname] = res
        info.update(load_end=load_average(), seconds=round(time.time() - info.pop('started')))
        if partial:
            partial(results)
    return results
