"""Measuring models: one FLOP counter, one parameter counter, one peak-memory reader, one way
to build a config's model without its pretrained weights, and the reproduction ledger.

The tools in ``tools/analysis_tools/`` are command lines over this package; tests import it.

- :func:`build_model` (:mod:`.build`): a config's model (or its backbone), nothing loaded.
- :func:`count_params` (:mod:`.params`): total, relative-position tables, named groups.
- :func:`count_flops` (:mod:`.flops`): multiply-adds on shape-only tensors, with the
  operators' declared costs (``flops(input_hw)``) for what no counter sees;
  :func:`in_convention` converts to a paper's FLOP convention; :func:`analyzer_macs` is
  mmengine's ``FlopAnalyzer`` on the same forward, for cross-checking.
- :func:`peak_memory` (:mod:`.memory`): the peak memory of one piece of work.
- :class:`Progress`, :func:`quiet` (:mod:`.cli`): "n/N" progress lines with a time estimate,
  library logs at WARNING.
- :mod:`.ledger`: ``docs/paper_tables.md``; :mod:`.la_complexity`, :mod:`.mrla_cost`: the
  LA-layer complexity table and MRLA's extra cost, from the same counters.
- :mod:`.interleave`: timing by CPU time, the compared cases round-robin in one process,
  medians, ratios to a baseline; the CPU model. :mod:`.bench_kernels`: the attention-kernel
  table (each kernel against plain SDPA).
- :mod:`.bench_cases`, :mod:`.bench_run`, :mod:`.bench_report`: the backbone benchmark (its
  cases: our configs' backbones and every registered operator); :mod:`.lesa_shares`,
  :mod:`.mrla_maps`: LESA's fusion weights and MRLA's layer-attention maps;
  :mod:`.attention_maps`: any operator's attention maps on an image (the records of
  ``record_attention``).
"""
from .build import build_model, drop_pretrained, load_cfg
from .cli import Progress, quiet
from .flops import OperatorCostError, analyzer_macs, count_flops, in_convention
from .memory import peak_memory
from .params import count_params

__all__ = [
    'build_model', 'drop_pretrained', 'load_cfg', 'Progress', 'quiet', 'OperatorCostError',
    'analyzer_macs', 'count_flops', 'in_convention', 'peak_memory', 'count_params'
]
