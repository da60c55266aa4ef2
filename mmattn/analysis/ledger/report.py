"""The ledger's run: measure, compare, print, and write (or diff) the doc."""
import difflib
import os.path as osp
import sys
import time

from .compare import evaluate, failures, summary
from .data import DATA_DIR, DOC, REPO, data_errors, gap, load_papers
from .measure import cross_check, jobs_of, measure_all
from .render import fmt_paper, render


def print_figures(papers, fails):
    for paper in papers:
        for table in paper['tables']:
            for row in table['rows']:
                for label, pv, ov, status in row.get('_figures', []):
                    ours = '-' if ov is None else f'{ov:.3f} ({gap(ov, pv)})'
                    print(f"  {paper['paper']} {table['id']} {row['name']}: {label} paper "
                          f'{fmt_paper(pv)} ours {ours}: {status}')
    for s in summary(papers):
        print(f'{s["paper"]:>9} {s["table"]:<6} rows {s["rows"]:>2}  implemented '
              f'{s["implemented"]:>2}  missing {s["missing"]:>2}  within 2% {s["ok"]:>2}  '
              f'explained {s["explained"]:>2}  unexplained {s["fail"]:>2}')
    for f in fails:
        print(f'UNEXPLAINED: {f}')


def run(check=False, diff=False, out=DOC, data_dir=DATA_DIR, no_cross_check=False):
    """What ``tools/analysis_tools/paper_tables.py`` does; its exit status.

    ``check``: 1 on a figure more than 2% from the paper's without an explanation, one not
    measured, or a data error; writes nothing. ``diff``: 1 if ``docs/paper_tables.md``
    differs from a regeneration; writes nothing. Otherwise writes the doc to ``out``.
    """
    t0 = time.time()
    papers = load_papers(data_dir)
    errors = data_errors(papers)
    for e in errors:
        print(f'data error: {e}')
    print(f'measuring the configs of {len(jobs_of(papers))} rows ...', flush=True)
    results = measure_all(papers)
    evaluate(papers, results)
    fails = failures(papers)
    print_figures(papers, fails)
    status = 1 if (fails or errors) else 0
    if check:
        print(f'--check: {len(fails)} unexplained figure(s), {len(errors)} data error(s) '
              f'({time.time() - t0:.0f}s)')
        if not diff:
            return status
    doc = render(papers, results, None if no_cross_check else cross_check())
    if diff:
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
        return status if check else 0
    with open(out, 'w') as f:
        f.write(doc)
    print(f'wrote {osp.relpath(out, REPO) if out.startswith(REPO) else out} '
          f'in {time.time() - t0:.0f}s')
    return 1 if errors else 0
