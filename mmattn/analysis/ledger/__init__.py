"""The reproduction ledger (``docs/paper_tables.md``): every row of the five papers' tables,
the config that implements it, the paper's figures and ours.

:mod:`.data` reads ``docs/paper_tables/*.yml``; :mod:`.measure` builds each row's config once
and counts its parameters and FLOPs with :mod:`mmattn.analysis` (the same counters as every
other tool); :mod:`.compare` applies the paper's FLOP convention and the 2% tolerance;
:mod:`.render` writes the markdown. ``tools/analysis_tools/paper_tables.py`` is the CLI.
"""
from .compare import evaluate, explanation_text, failures, format_keys, summary
from .data import (DATA_DIR, DOC, FIGURES, TOLERANCE, PaperNumber, data_errors, gap,
                   load_papers, part_of, row_configs, within)
from .measure import CROSS_CHECK, build, cross_check, jobs_of, measure_all
from .render import fmt_paper, render
from .report import print_figures, run

__all__ = [
    'evaluate', 'explanation_text', 'failures', 'format_keys', 'summary', 'DATA_DIR', 'DOC',
    'FIGURES', 'TOLERANCE', 'PaperNumber', 'data_errors', 'gap', 'load_papers', 'part_of',
    'row_configs', 'within', 'CROSS_CHECK', 'build', 'cross_check', 'jobs_of', 'measure_all',
    'fmt_paper', 'render', 'print_figures', 'run'
]
