"""Interleaved timing: run the compared callables round-robin in one process, CPU time per
call, medians, ratios to a named baseline; and the machine's description.

Why this way (issue 17): on a machine shared with other jobs the wall clock measures the
scheduler, and a change of load between two cases measured one after the other changes their
ratio. Timing every call by the process's CPU time (user + system of all its threads,
``time.process_time``) counts each call's own work; running the cases in turn, ``A, B, C, A,
B, C, ...``, inside one process exposes all of them alike to what is left (cache and memory
bandwidth taken by the neighbours, frequency changes), so their ratios hold where the
absolute figures drift. With one torch thread the CPU time of a call is its elapsed time on
a quiet machine; with ``n`` threads it is the work of all of them (busy-waits at OpenMP
barriers included), not the elapsed time: the wall medians are kept next to it.

This module imports neither torch nor the OpenMMLab libraries (the tools import it before
parsing is done); ``sync`` hooks (CUDA) are the caller's.
"""
import os
import platform
import statistics
import time

__all__ = ['cpu_model', 'core_count', 'load_average', 'machine_line', 'run_rounds', 'summarise',
           'interleave', 'ratios']


def cpu_model():
    """The CPU's model name: ``model name`` of ``/proc/cpuinfo`` (``Model name`` of ``lscpu``
    on machines whose cpuinfo has none, e.g. arm64), else ``platform.processor()``, else
    ``'unknown CPU'``."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip().lower() == 'model name' and value.strip():
                    return value.strip()
    except OSError:
        pass
    try:
        import subprocess
        out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(':')
            if key.strip() == 'Model name' and value.strip():
                return value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or 'unknown CPU'


def core_count():
    """``(cores this process may run on, cores of the machine)``: ``sched_getaffinity`` and
    ``os.cpu_count`` (the first equals the second where the platform has no affinity)."""
    total = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = total
    return usable, total


def load_average():
    try:
        return ' '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:
        return 'n/a'


def machine_line():
    """``CPU: <model>, <n> cores (<m> usable), load average a b c``: what every benchmark
    prints first."""
    usable, total = core_count()
    cores = f'{total} cores' + (f' ({usable} usable by this process)' if usable != total else '')
    return f'CPU: {cpu_model()}, {cores}, load average (1/5/15 min) {load_average()}'


def run_rounds(calls, rounds, clock=time.process_time, wall=time.perf_counter, sync=None,
               after=None, order=None, max_seconds=None, min_rounds=1):
    """Calls every callable of ``calls`` (``{name: fn}``, in its order) once per round, for
    ``rounds`` rounds: ``A, B, C, A, B, C, ...``.

    Returns ``{name: {'cpu': [seconds by clock, one per call], 'wall': [...]}}``. ``sync()``
    runs before and after each call (inside the timed span only after: a CUDA synchronise);
    ``after(name)`` after each call, untimed (drop gradients); ``order``, a list, gets the
    name of every call as it runs (tests). ``max_seconds``: stop after the round during
    which this much wall time has passed, once ``min_rounds`` rounds are done. A call that
    raises ends the run of its case only (its error kept under ``'error'``).
    """
    out = {name: dict(cpu=[], wall=[]) for name in calls}
    live = dict(calls)
    t_start = wall()
    for r in range(rounds):
        for name, fn in list(live.items()):
            if sync:
                sync()
            c0, w0 = clock(), wall()
            try:
                fn()
                if sync:
                    sync()
            except Exception as e:  # noqa: BLE001  (reported; the other cases go on)
                out[name]['error'] = f'{type(e).__name__}: {e}'[:300]
                del live[name]
                continue
            c1, w1 = clock(), wall()
            out[name]['cpu'].append(c1 - c0)
            out[name]['wall'].append(w1 - w0)
            if order is not None:
                order.append(name)
            if after:
                after(name)
        if max_seconds is not None and r + 1 >= min_rounds and wall() - t_start > max_seconds:
            break
    return out


def ratios(values, baseline):
    """``{name: value / values[baseline]}`` (None where either is missing or the baseline 0)."""
    base = values.get(baseline)
    return {name: (v / base if v is not None and base else None) for name, v in values.items()}


def summarise(times, baseline=None):
    """Medians of :func:`run_rounds`' lists and CPU-time ratios to ``baseline``:
    ``{name: {'cpu', 'wall' (medians, None without a call), 'rounds', 'ratio'[, 'error']}}``."""
    res = {}
    for name, t in times.items():
        r = res[name] = dict(cpu=statistics.median(t['cpu']) if t['cpu'] else None,
                             wall=statistics.median(t['wall']) if t['wall'] else None,
                             rounds=len(t['cpu']))
        if 'error' in t:
            r['error'] = t['error']
    if baseline is not None:
        for name, q in ratios({n: r['cpu'] for n, r in res.items()}, baseline).items():
            res[name]['ratio'] = q
    return res


def interleave(calls, rounds, baseline=None, warmup=1, clock=time.process_time,
               wall=time.perf_counter, sync=None, after=None, order=None, max_seconds=None):
    """Warm-up (``warmup`` untimed rounds, every case in turn), then :func:`run_rounds` and
    :func:`summarise`: ``{name: {'cpu', 'wall', 'rounds', 'ratio'[, 'error']}}``.

    Example::

        res = interleave({'floor': floor_step, 'ext': ext_step}, rounds=5, baseline='floor')
        res['ext']['ratio']  # median CPU time of ext / median CPU time of floor
    """
    live = dict(calls)
    errors = {}
    if warmup:
        warm = run_rounds(live, warmup, clock, wall, sync, after, None)
        for name, t in warm.items():
            if 'error' in t:
                errors[name] = t['error']
                del live[name]
    times = run_rounds(live, rounds, clock, wall, sync, after, order, max_seconds)
    for name, err in errors.items():
        times[name] = dict(cpu=[], wall=[], error=err)
    return summarise({name: times[name] for name in calls}, baseline)
