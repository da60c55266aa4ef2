"""What every command-line tool shares: quiet libraries, "n/N" progress with a time estimate.

This module imports neither torch nor the OpenMMLab libraries, but importing anything under
``mmattn`` runs ``mmattn/__init__.py``, which registers the models (torch, mmengine, mmcv,
mmseg: seconds). So a tool parses its arguments with argparse alone (``--help`` and argument
errors answer at once) and imports this module after::

    def parse_args(argv=None):
        p = argparse.ArgumentParser(...)
        p.add_argument('--verbose', action='store_true', help='library logs at INFO')
        return p.parse_args(argv)

    def main(argv=None):
        args = parse_args(argv)
        from mmattn.analysis.cli import Progress, quiet
        quiet(args.verbose)
"""
import logging
import os
import sys
import time
import warnings

__all__ = ['outfile', 'quiet', 'quiet_mmengine', 'Progress', 'repo_root']

# loggers that print at INFO while models are built (mmengine's registry and init messages)
_LIBRARY_LOGGERS = ('mmengine', 'mmdet', 'mmseg', 'mmpretrain', 'mmcv', 'mmattn')


def repo_root():
    """The repository (the folder above ``mmattn/``): tools resolve configs against it."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def outfile(path):
    """``path`` of an output file, its folder created (``--json work_dirs/bench/x.json``)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path



def quiet(verbose=False):
    """Library logs at WARNING (INFO with ``verbose``); Python warnings hidden unless verbose.

    mmengine's ``MMLogger`` instances are created later, with the level of their own config;
    the ``logging`` loggers set here and ``MMLogger.get_instance('mmengine')``, set once
    mmengine is imported (:func:`quiet_mmengine`), cover what a tool builds.
    """
    level = logging.INFO if verbose else logging.WARNING
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose:
        warnings.filterwarnings('ignore')
    os.environ['MMATTN_LOG_LEVEL'] = logging.getLevelName(level)
    if 'mmengine' in sys.modules:
        quiet_mmengine()
    return level


def quiet_mmengine():
    """mmengine's global logger at the level :func:`quiet` chose (imports mmengine)."""
    from mmengine.logging import MMLogger
    level = os.environ.get('MMATTN_LOG_LEVEL', 'WARNING')
    MMLogger.get_instance('mmengine').setLevel(level)


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds}s'
    if seconds < 3600:
        return f'{seconds // 60}m{seconds % 60:02d}s'
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m'


class Progress:
    """Prints ``[n/N] message (elapsed, about T left)`` after each of N steps.

    The estimate is the mean time per finished step times the steps left, so it settles after
    a few steps; ``weights`` (one per step) make it proportional to known relative costs.
    """

    def __init__(self, total, label='', stream=None, weights=None, clock=time.monotonic):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stdout
        self.weights = list(weights) if weights is not None else None
        self.clock = clock
        self.start = clock()

    def eta(self):
        """Seconds left by the rate so far, or None before the first step."""
        if not self.done:
            return None
        elapsed = self.clock() - self.start
        if self.weights:
            done_w = sum(self.weights[:self.done])
            left_w = sum(self.weights[self.done:])
            return elapsed * left_w / done_w if done_w else None
        return elapsed * (self.total - self.done) / self.done

    def step(self, message=''):
        self.done += 1
        elapsed = self.clock() - self.start
        eta = self.eta()
        left = '' if self.done >= self.total or eta is None else f', about {_duration(eta)} left'
        head = f'[{self.done}/{self.total}]' + (f' {self.label}' if self.label else '')
        print(f'{head} {message} ({_duration(elapsed)}{left})'.replace('  ', ' '),
              file=self.stream, flush=True)
