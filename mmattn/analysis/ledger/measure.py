"""The ledger's measurements: every row's config built once, its parameters and FLOPs.

What is measured (the doc's "Method" section): ImageNet rows count the whole classifier (fc
included, as the papers do); detection rows the backbone alone (the papers give no parameter
column there, and FPN and heads are the same in every row of a table); segmentation rows the
whole segmentor (FLOPs: backbone and decode head, what runs at inference), since EANet's
operator sits in the decode head. Nothing is cached between runs.
"""
import os.path as osp
import time
from collections import OrderedDict

from ..build import build_model
from ..cli import Progress
from ..flops import analyzer_macs, count_flops
from ..params import count_params
from .data import REPO, part_of

# configs whose FLOPs cross-check against mmengine's FlopAnalyzer goes into the doc
CROSS_CHECK = [
    'configs/lesa/resnet50_4xb32-cos-90e_in1k.py',
    'configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py',
    'configs/aa/aa-r50_8xb32-100e_in1k.py',
    'configs/la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py',
    'configs/mrla/mrla-light-r50_8xb32_in1k.py',
    'configs/mrla/mrla-base-r50_8xb32_in1k.py',
]


def build(config, part):
    """``part='model'``: the config's whole model; ``'backbone'``: its ``model.backbone``;
    nothing loaded, in eval mode."""
    model = build_model(config, part='backbone' if part == 'backbone' else None)
    model.eval()  # not chained: some backbones' train() returns None (mmdet's ResNet)
    return model


def jobs_of(papers):
    """``{(config, part): dict(flops={input sizes}, groups={name: regex})}`` of every row with
    a config; marks the rows that are another row's baseline."""
    for paper in papers:
        for table in paper['tables']:
            for row in table['rows']:
                if row.get('baseline'):
                    base = next(r for r in table['rows'] if r['name'] == row['baseline'])
                    base['_is_baseline'] = True
    jobs = OrderedDict()
    for paper in papers:
        for table in paper['tables']:
            for row in table['rows']:
                if not row.get('config') or not osp.isfile(osp.join(REPO, row['config'])):
                    continue
                job = jobs.setdefault((row['config'], part_of(row)), dict(flops=set(),
                                                                          groups={}))
                job['groups'].update(row.get('param_groups') or {})
                job['flops'].add(tuple(row['input']))
    return jobs


def measure_all(papers, stream=None):
    """``{(config, part, hw or None): measurement}`` for every row that needs one; one
    ``[n/N]`` progress line per config."""
    jobs = jobs_of(papers)
    progress = Progress(len(jobs), 'measured', stream=stream)
    results = {}
    for (config, part), job in jobs.items():
        t0 = time.time()
        model = build(config, part)
        results[(config, part, None)] = count_params(model, job['groups'])
        for hw in sorted(job['flops']):
            try:
                results[(config, part, hw)] = count_flops(model, hw)
            except Exception as e:  # noqa: BLE001  (reported in the doc, not fatal)
                results[(config, part, hw)] = dict(error=f'{type(e).__name__}: {e}'[:200])
        del model
        progress.step(f'{config} ({part}) in {time.time() - t0:.1f}s')
    return results


def cross_check(configs=CROSS_CHECK, hw=(224, 224), stream=None):
    """Our count against mmengine's jit-trace ``FlopAnalyzer`` on real tensors."""
    rows = []
    progress = Progress(len(configs), 'cross-checked', stream=stream)
    for config in configs:
        model = build(config, 'model')
        ours = count_flops(model, hw)
        fa = analyzer_macs(model, hw)
        rows.append(dict(config=config, ours=ours['macs'], analyzer=fa['macs'],
                         analyzer_norm=fa['norm'], skipped=fa['skipped'],
                         analytic=ours['analytic']))
        del model
        progress.step(config)
    return rows
