"""Peak memory of one piece of work (a forward + backward), for the benchmarks.

On CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before. On the CPU: the
peak resident set size reached during the work minus the resident size before it. The
high-water mark is reset right before (``/proc/self/clear_refs``; ``VmHWM`` in
``/proc/self/status`` and ``ru_maxrss`` read the same mark); where that is refused, the mark
since the process started is used (``ru_maxrss``), which is only sound in a fresh process.

Run each case in a fresh process: memory freed by earlier work sits in the allocator's free
lists and is reused without raising the resident size, and tracemalloc does not see torch's
allocations at all.
"""
import resource

__all__ = ['peak_memory', 'status_bytes', 'reset_peak']


def status_bytes(key):
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes, or None."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak():
    """Resets the peak-RSS mark of this process; False where the kernel refuses."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory(work, device='cpu'):
    """Runs ``work()`` and returns ``(its result, peak bytes above the state before it)``."""
    if str(device).startswith('cuda'):
        import torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        result = work()
        torch.cuda.synchronize()
        return result, torch.cuda.max_memory_allocated() - before
    before = status_bytes('VmRSS')
    reset = before is not None and reset_peak()
    if not reset:
        before = _maxrss()
    result = work()
    peak = status_bytes('VmHWM') if reset else _maxrss()
    return result, peak - before
