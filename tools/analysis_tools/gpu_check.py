"""The prepared GPU check of the attention kernels (issue 17): exactness of 'flex' and
'chunked' against the explicit path on CUDA, their speed against plain SDPA at the issue's
token sizes, and LESA-R50 / AA-R50 vs ResNet-50 at 1024x1024 under bf16 autocast.
The logic and what is measured: ``mmattn/analysis/gpu_check.py``.

On the lent GPU machine (no mmcv there): DEVELOPERS.md, "GPU checks", says which wheels to
carry (mmengine, mmcv-lite, mmsegmentation and their pure-Python needs). mmcv-lite has no
compiled ops and mmseg imports a few from ``mmcv.ops`` at import time; where ``mmcv._ext`` is
missing, this script installs a stand-in ``mmcv.ops`` before importing mmattn: mmcv's own
pure-PyTorch ``point_sample`` and, for every other name, a function that raises when called
(nothing this check builds calls one).

Examples::

    python tools/analysis_tools/gpu_check.py                 # on a GPU, writes to $OUT
    python tools/analysis_tools/gpu_check.py --quick --out /tmp/gc   # CPU, seconds
"""
import argparse
import importlib
import importlib.util
import os
import os.path as osp
import sys
import types

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def install_mmcv_ops_standin():
    """A stand-in ``mmcv.ops`` where mmcv has no compiled ops (mmcv-lite); returns whether it
    was installed."""
    try:
        importlib.import_module('mmcv._ext')
        return False
    except ImportError:
        pass
    spec = importlib.util.find_spec('mmcv')
    if spec is None or 'mmcv.ops' in sys.modules:
        return False
    ops = types.ModuleType('mmcv.ops', 'stand-in for mmcv-lite (no compiled ops)')
    ops.__path__ = []
    sys.modules['mmcv.ops'] = ops
    path = osp.join(osp.dirname(spec.origin), 'ops', 'point_sample.py')
    ps_spec = importlib.util.spec_from_file_location('mmcv.ops.point_sample', path)
    ps = importlib.util.module_from_spec(ps_spec)
    sys.modules['mmcv.ops.point_sample'] = ps
    ps_spec.loader.exec_module(ps)  # pure PyTorch (F.grid_sample)
    ops.point_sample = ps.point_sample

    def missing(name):
        if name.startswith('__'):
            raise AttributeError(name)

        def op(*args, **kwargs):
            raise RuntimeError(f'mmcv.ops.{name} needs the compiled mmcv (mmcv-lite here)')
        op.__name__ = name
        return op

    ops.__getattr__ = missing
    return True


SECTIONS = ('exactness', 'kernels', 'backbones')  # mmattn.analysis.gpu_check.SECTIONS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='GPU check of the attention kernels (issue 17): '
                                'exactness on CUDA, speed against SDPA, whole backbones')
    p.add_argument('--out', default=os.environ.get('OUT') or 'work_dirs/gpu_check',
                   help='folder for gpu_check.json and gpu_check.md (default: $OUT if set, '
                   'else work_dirs/gpu_check)')
    p.add_argument('--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS))
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes on the CPU (seconds): checks the structure, not the GPU')
    p.add_argument('--device', default=None, help='default: cuda (cpu with --quick)')
    p.add_argument('--repeat', type=int, default=None,
                   help='timed runs per kernel case (median; default 5, backbones half)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs after the first call (default 2)')
    p.add_argument('--size', type=int, default=None, help='backbone input side (default 1024)')
    p.add_argument('--batches', type=int, nargs='+', default=None,
                   help='backbone batch sizes (default 1 2; after the first only within '
                   '--budget-s)')
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    p.add_argument('--budget-s', type=float, default=420.0,
                   help='optional work (larger batches, the chunked kernel in backbones) is '
                   'skipped once the run has taken this long (default 420)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    standin = install_mmcv_ops_standin()
    from mmattn.analysis import quiet
    from mmattn.analysis.gpu_check import run
    quiet(args.verbose)
    if standin:
        print('mmcv.ops: stand-in installed (mmcv without compiled ops)', flush=True)
    run(args.out, sections=args.sections, quick=args.quick, device=args.device,
        repeat=args.repeat, warmup=args.warmup, size=args.size, batches=args.batches,
        budget_s=args.budget_s)


if __name__ == '__main__':
    main()
