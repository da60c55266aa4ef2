"""The reproduction ledger: every row of the five papers' tables, the config that implements
it, the paper's figures and ours, in ``docs/paper_tables.md``.

    python tools/analysis_tools/paper_tables.py                 # measure, write the doc
    python tools/analysis_tools/paper_tables.py --check         # compare with the papers only
    python tools/analysis_tools/paper_tables.py --check --diff  # and is the doc up to date?

The papers' figures, the config of every row and the explanations of gaps are in
``docs/paper_tables/*.yml``; the measuring, the conventions and the tolerance are in
:mod:`mmattn.analysis.ledger` (and in the doc's "Method" section). ``--check`` exits non-zero
when a figure is more than 2% from the paper's and its row (or table) has no explanation, when
a figure could not be measured, or when a data file names a config that is gone.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(REPO, 'docs', 'paper_tables.md')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--check', action='store_true',
                   help='exit 1 on a figure more than 2%% from the paper\'s without an '
                   'explanation (or one not measured, or a data error); writes nothing')
    p.add_argument('--diff', action='store_true',
                   help='exit 1 if docs/paper_tables.md differs from a regeneration; writes '
                   'nothing')
    p.add_argument('--out', default=DOC, help='where to write the doc (default: %(default)s)')
    p.add_argument('--data-dir', default=osp.join(REPO, 'docs', 'paper_tables'))
    p.add_argument('--no-cross-check', action='store_true',
                   help="skip the FlopAnalyzer comparison section (faster; the doc then "
                   "differs from the committed one)")
    p.add_argument('--verbose', action='store_true', help='library logs at INFO')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from mmattn.analysis.cli import quiet
    quiet(args.verbose)
    from mmattn.analysis.ledger import run
    return run(args.check, args.diff, args.out, args.data_dir, args.no_cross_check)


if __name__ == '__main__':
    sys.exit(main())
