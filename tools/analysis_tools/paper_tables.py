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
import difflib
import os.path as osp
import sys
import time

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


def print_figures(papers, fails, ledger):
    for paper in papers:
        for table in paper['tables']:
            for row in table['rows']:
                for label, pv, ov, status in row.get('_figures', []):
                    ours = '-' if ov is None else f'{ov:.3f} ({ledger.gap(ov, pv)})'
                    print(f"  {paper['paper']} {table['id']} {row['name']}: {label} paper "
                          f'{ledger.fmt_paper(pv)} ours {ours}: {status}')
    for s in ledger.summary(papers):
        print(f'{s["paper"]:>9} {s["table"]:<6} rows {s["rows"]:>2}  implemented '
              f'{s["implemented"]:>2}  missing {s["missing"]:>2}  within 2% {s["ok"]:>2}  '
              f'explained {s["explained"]:>2}  unexplained {s["fail"]:>2}')
    for f in fails:
        print(f'UNEXPLAINED: {f}')


def main(argv=None):
    args = parse_args(argv)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from mmattn.analysis.cli import quiet
    quiet(args.verbose)
    from mmattn.analysis import ledger
    t0 = time.time()
    papers = ledger.load_papers(args.data_dir)
    errors = ledger.data_errors(papers)
    for e in errors:
        print(f'data error: {e}')
    print(f'measuring the configs of {len(ledger.jobs_of(papers))} rows ...', flush=True)
    results = ledger.measure_all(papers)
    ledger.evaluate(papers, results)
    fails = ledger.failures(papers)
    print_figures(papers, fails, ledger)
    status = 1 if (fails or errors) else 0
    if args.check:
        print(f'--check: {len(fails)} unexplained figure(s), {len(errors)} data error(s) '
              f'({time.time() - t0:.0f}s)')
        if not args.diff:
            return status
    cross = None if args.no_cross_check else ledger.cross_check()
    doc = ledger.render(papers, results, cross)
    if args.diff:
        with open(DOC) as f:
            current = f.read()
        if current != doc:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), doc.splitlines(True), 'docs/paper_tables.md',
                'regenerated'))
            print('docs/paper_tables.md is out of date: run '
                  'python tools/analysis_tools/paper_tables.py')
            return 1
        print(f'docs/paper_tables.md is up to date ({time.time() - t0:.0f}s)')
        return status if args.check else 0
    with open(args.out, 'w') as f:
        f.write(doc)
    print(f'wrote {osp.relpath(args.out, REPO) if args.out.startswith(REPO) else args.out} '
          f'in {time.time() - t0:.0f}s')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
