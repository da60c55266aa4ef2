"""The reproduction ledger: every row of the five papers' ImageNet and dense-prediction tables,
the config that implements it, the paper's figures and ours, in ``docs/paper_tables.md``.

    python tools/analysis_tools/paper_tables.py                 # measure, write the doc
    python tools/analysis_tools/paper_tables.py --check         # compare with the papers only
    python tools/analysis_tools/paper_tables.py --check --diff  # and is the doc up to date?

What goes in, what comes out:

* ``docs/paper_tables/*.yml``, one file per paper, hold the papers' figures (never ours), the
  config of every row (``config: null`` + ``missing:`` for rows nothing implements), the FLOP
  convention of the paper and an ``explanation:`` for any figure of ours more than 2% from the
  paper's. Explanations are format strings: the numbers in them are filled in from this tool's
  measurements (keys: see :func:`format_keys`), so no measured number is written by hand.
* This tool builds each config's model (``init_cfg`` dropped, nothing loaded) and measures it;
  nothing measured is cached between runs.

Measuring (written into the doc's "Method" section as well):

* Parameters and FLOPs of every row with a config: ImageNet rows count the whole classifier
  (fc included, as the papers do); detection rows the backbone alone (the papers give no
  parameter column there, and FPN and heads are the same in every row of a table);
  segmentation rows the whole segmentor (FLOPs: backbone and decode head, what runs at
  inference), since EANet's operator sits in the decode head. Relative-position tables
  (``relative``, ``rel_height``, ``rel_width``) are also counted apart, for the papers that
  leave them out.
* FLOPs: multiply-adds counted by ``torch.utils.flop_counter.FlopCounterMode`` under
  ``FakeTensorMode``: the model runs on shape-only tensors (no memory, no arithmetic, so the
  explicit ``(HW)^2`` attention of a 1333x800 image costs a second), and the counter sits at the
  dispatcher, below autograd, so it sees inside custom ``autograd.Function``s, which jit-trace
  counters (mmengine's ``FlopAnalyzer``) skip as ``prim::PythonOp``. Counted: convolutions,
  ``mm``/``addmm``/``bmm``/``baddbmm`` (einsum and matmul lower to them) and
  ``scaled_dot_product_attention`` (the CPU flash kernel is not in torch's table: an analytic
  count ``B*heads*L*S*(d + d_v)`` is added here). Attention runs on the explicit path
  (``default_attn_impl('explicit')``), whose matmuls are the paper's maths. Not counted, as in
  the papers' conventions: BatchNorm, activations, softmax, pooling, bilinear sampling,
  element-wise products. Operators whose products are element-wise (no matmul) get an analytic
  count: every ``LALayer`` contributes ``LALayer.flops(h, w)`` instead of what the counter saw
  inside it (the counter sees its convs only; the q.k~ and weighted-sum products are
  element-wise), and MRLA-base's weighted sum of the value maps (``addcmul``) is added. The
  doc's method section compares the counts with mmengine's ``FlopAnalyzer`` on one model per
  method (``--no-cross-check`` leaves that out).
* The paper's convention is applied before comparing: ``macs`` (LA-layer: ResNet-50 = 4.1),
  ``2macs`` (AA: ResNet-50 = 8.2), ``thop`` (MRLA: multiply-adds + 2 per BatchNorm element + 1
  per pooled element, thop's counting), ``none`` (no FLOPs in the paper).
* A figure is within tolerance when it is within 2% of the paper's (nothing is allowed for the
  paper's rounding). ``--check`` exits non-zero when a figure is outside and its row (or table)
  has no ``explanation``, when a figure could not be measured, or when a data file names a
  config that is gone. A figure of ours that is not of the same scope as the paper's (backbone
  against a whole detector) counts as outside unless the row or table explains it.
"""
import argparse
import difflib
import glob
import json
import math
import os
import os.path as osp
import re
import sys
import time
from collections import OrderedDict, defaultdict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA_DIR = osp.join(REPO, 'docs', 'paper_tables')
DOC = osp.join(REPO, 'docs', 'paper_tables.md')
TOLERANCE = 0.02
# (column label, key of the paper's figure in a data file = key of ours in the format keys)
FIGURES = (('params (M)', 'params_m'), ('FLOPs (G)', 'flops_g'),
           ('extra params (M)', 'extra_params_m'), ('extra FLOPs (G)', 'extra_flops_g'))
POS_TABLE_RE = re.compile(r'(^|\.)(relative|rel_height|rel_width)$')
CONVENTIONS = {
    'macs': 'multiply-adds',
    '2macs': '2 x multiply-adds',
    'thop': 'thop (multiply-adds + BatchNorm and pooling per element)',
    'none': 'no FLOPs reported',
}
NOT_TRAINED = {
    'classification': 'not trained here: no ImageNet, no GPU',
    'detection': 'not trained here: no COCO, no GPU',
    'segmentation': 'not trained here: no ADE20K, no GPU',
}
# configs whose FLOPs cross-check against mmengine's FlopAnalyzer goes into the doc
CROSS_CHECK = [
    'configs/lesa/resnet50_4xb32-cos-90e_in1k.py',
    'configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py',
    'configs/aa/aa-r50_8xb32-100e_in1k.py',
    'configs/la_layer/la-resnet50_8xb64-warmup-coslr_in1k.py',
    'configs/mrla/mrla-light-r50_8xb32_in1k.py',
    'configs/mrla/mrla-base-r50_8xb32_in1k.py',
]


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def load_papers(data_dir=DATA_DIR):
    """The data files, in their ``order``; each table's rows get the table's defaults."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor('tag:yaml.org,2002:float',
                           lambda loader, node: PaperNumber(loader.construct_scalar(node)))
    papers = []
    for path in sorted(glob.glob(osp.join(data_dir, '*.yml')) +
                       glob.glob(osp.join(data_dir, '*.json'))):
        with open(path) as f:
            paper = json.load(f) if path.endswith('.json') else yaml.load(f, Loader)
        paper['file'] = osp.relpath(path, REPO)
        for table in paper['tables']:
            for row in table['rows']:
                row.setdefault('paper', {})
                for key in ('task', 'input', 'log_metric', 'flops_scope'):
                    row.setdefault(key, table.get(key))
        papers.append(paper)
    papers.sort(key=lambda p: (p.get('order', 99), p['paper']))
    return papers


def row_configs(row):
    return ([row['config']] if row.get('config') else []) + list(row.get('also') or [])


def data_errors(papers):
    """Problems in the data files themselves (a config that is gone, a baseline not found)."""
    errors = []
    for paper in papers:
        for table in paper['tables']:
            names = {r['name'] for r in table['rows']}
            for row in table['rows']:
                where = f"{paper['file']} {table['id']} '{row['name']}'"
                for cfg in row_configs(row):
                    if not osp.isfile(osp.join(REPO, cfg)):
                        errors.append(f'{where}: config {cfg} does not exist')
                if not row.get('config') and not row.get('missing'):
                    errors.append(f'{where}: no config and no `missing:` reason')
                if row.get('baseline') and row['baseline'] not in names:
                    errors.append(f"{where}: baseline '{row['baseline']}' is not a row of the "
                                  'table')
    return errors


# ----------------------------------------------------------------------------------------------
# building
# ----------------------------------------------------------------------------------------------
_READY = False


def setup():
    """Registers mmattn and the three libraries' modules (once per process)."""
    global _READY
    if _READY:
        return
    sys.path.insert(0, REPO)
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    import warnings
    warnings.filterwarnings('ignore')
    import mmattn  # noqa: F401  (compat fixes + registration)
    # harmless once mmattn registers them itself
    import mmattn.models.layers.aa_conv  # noqa: F401
    import mmattn.models.layers.lesa  # noqa: F401
    from mmattn.apis.runner import _register
    for lib in ('mmpretrain', 'mmdet', 'mmseg'):
        try:
            _register(lib)
        except ImportError as e:  # a library missing only matters for its configs
            print(f'warning: {lib} not importable: {e}', file=sys.stderr)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('ERROR')
    _READY = True


def build(config, part):
    """``part='model'``: the whole model of the config; ``'backbone'``: its ``model.backbone``.

    Built in the config's default scope, with every ``init_cfg`` of type Pretrained dropped
    (nothing is downloaded or loaded), in eval mode.
    """
    setup()
    from mmengine.config import Config

    from mmattn.apis import build_model_from_cfg
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.pop('pretrained', None)
    _drop_pretrained(cfg.model)
    model = build_model_from_cfg(cfg, 'backbone' if part == 'backbone' else None)
    model.eval()  # not chained: some backbones' train() returns None (mmdet's ResNet)
    return model


def _drop_pretrained(node):
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node.pop('init_cfg')
        for v in node.values():
            _drop_pretrained(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _drop_pretrained(v)


def count_params(model, groups=None):
    """Total parameters, the relative-position tables' share, and named regex groups."""
    total = pos = 0
    group_counts = {g: 0 for g in (groups or {})}
    for name, p in model.named_parameters():
        total += p.numel()
        if POS_TABLE_RE.search(name):
            pos += p.numel()
        for g, pattern in (groups or {}).items():
            if re.search(pattern, name):
                group_counts[g] += p.numel()
    return dict(params=total, pos_params=pos, groups=group_counts)


# ----------------------------------------------------------------------------------------------
# FLOPs
# ----------------------------------------------------------------------------------------------
def _prod(shape):
    return math.prod(shape) if shape else 0


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    # torch.utils.flop_counter has no entry for the CPU flash kernel: q.k^T and attn.v, in
    # FLOPs (2 per multiply-add) like every entry of its table
    b, h, lq, d = query_shape
    s, dv = key_shape[-2], value_shape[-1]
    return 2 * b * h * lq * s * (d + dv)


def _elements(x_shape, *args, out_shape=None, **kwargs):
    # tallies, not FLOPs: doubled so that halving all counts gives elements
    return 2 * _prod(x_shape)


MAC_OPS = ('mm', 'addmm', 'bmm', 'baddbmm', 'convolution', '_convolution',
           '_scaled_dot_product_flash_attention_for_cpu', '_scaled_dot_product_efficient_attention',
           '_scaled_dot_product_flash_attention', '_scaled_dot_product_cudnn_attention')
CONV_OPS = ('convolution', '_convolution', 'addmm')  # convs and Linear layers with bias (fc)
NORM_OPS = ('native_batch_norm', '_native_batch_norm_legit', '_native_batch_norm_legit_no_training')
POOL_OPS = ('mean', 'avg_pool2d', '_adaptive_avg_pool2d')


def _custom_mapping():
    import torch
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop}
    for name in NORM_OPS + POOL_OPS:
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = _elements
    return mapping


def _op_name(op):
    # 'aten.convolution' (an OpOverloadPacket) -> 'convolution'
    return str(op).split('.')[1] if str(op).startswith('aten.') else str(op)


def count_flops(model, part, hw, batch=1):
    """Multiply-adds of one forward of ``model`` at ``hw`` on shape-only tensors.

    Returns ``macs`` (total, with analytic counts for element-wise operators), ``conv_macs``
    (convolutions and biased Linear layers, i.e. fc, wherever they are), ``attn_macs`` (the
    rest: attention matmuls, SDPA, and what the analytic counts add), ``norm_elements`` /
    ``pool_elements`` (inputs of BatchNorm, of average pooling and means), ``analytic``
    (per module type: what the counter saw inside, the total with the analytic count, and for
    LALayer the conv multiply-adds seen and in its formula).
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from mmattn.models.layers.attention import default_attn_impl
    from mmattn.models.layers.la_layer import LALayer
    from mmattn.models.layers.mrla import MRLABase

    root = model
    if part == 'model' and hasattr(model, 'extract_feat'):
        class _Tensor(torch.nn.Module):  # the classifier's logits: backbone, neck and head

            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x, mode='tensor')
        root = _Tensor(model)
    # Element-wise products no counter sees, by module:
    # - LALayer: q.k~ and the weighted sum over the k x k samples; its whole count is replaced
    #   by LALayer.flops(h, w) (the paper's convention), whose conv part must equal what the
    #   counter saw inside the layer;
    # - MRLABase: the attention-weighted sum of the stage's value maps (torch.addcmul), block t
    #   doing t multiply-adds per value element; added to what the counter saw.
    la_shapes, mrla_extra, hooks = {}, {}, []

    def la_hook(name):
        def hook(mod, args):  # a pre-hook must return None (a value would replace the input)
            la_shapes.setdefault(name, tuple(args[0].shape[-2:]))
        return hook

    def mrla_hook(name):
        def hook(mod, args, kwargs, output):
            values = kwargs.get('values', args[2] if len(args) > 2 else ())
            mrla_extra[name] = mrla_extra.get(name, 0) + (len(values) + 1) * output[2].numel()
        return hook
    for name, m in root.named_modules():
        if isinstance(m, LALayer):
            hooks.append(m.register_forward_pre_hook(la_hook(name)))
        elif isinstance(m, MRLABase):
            hooks.append(m.register_forward_hook(mrla_hook(name), with_kwargs=True))
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    try:
        with torch.no_grad(), default_attn_impl('explicit'), \
                FakeTensorMode(allow_non_fake_inputs=True):
            x = torch.empty(batch, 3, *hw)
            with counter:
                root(x)
    finally:
        for h in hooks:
            h.remove()
    counts = counter.get_flop_counts()
    prefix = type(root).__name__

    def tally(key, names):
        return sum(v for op, v in counts.get(key, {}).items() if _op_name(op) in names) // 2

    conv = tally('Global', CONV_OPS)
    macs = tally('Global', MAC_OPS)
    out = dict(conv_macs=conv, attn_macs=macs - conv, norm_elements=tally('Global', NORM_OPS),
               pool_elements=tally('Global', POOL_OPS), analytic={})
    modules = dict(root.named_modules())

    def account(kind, seen, total, conv_check=None):
        entry = out['analytic'].setdefault(kind, dict(seen=0, total=0, conv_seen=0,
                                                      conv_analytic=0))
        entry['seen'] += seen
        entry['total'] += total
        if conv_check:
            entry['conv_seen'] += conv_check[0]
            entry['conv_analytic'] += conv_check[1]
        out['attn_macs'] += total - seen
        return total - seen

    for name, (h, w) in la_shapes.items():
        parts = modules[name].flops_breakdown(h, w)
        macs += account('LALayer', tally(f'{prefix}.{name}', MAC_OPS), parts['total'] * batch,
                        (tally(f'{prefix}.{name}', CONV_OPS),
                         (parts['qkv'] + parts['offset_net']) * batch))
    for name, extra in mrla_extra.items():
        seen = tally(f'{prefix}.{name}', MAC_OPS)
        macs += account('MRLABase', seen, seen + extra)
    la = out['analytic'].get('LALayer')
    if la and la['conv_seen'] != la['conv_analytic']:  # the formula no longer fits the module
        print(f"warning: LALayer: the counter saw {la['conv_seen']:,} conv multiply-adds, "
              f"LALayer.flops_breakdown has {la['conv_analytic']:,}", file=sys.stderr)
    out['macs'] = macs
    return out


def in_convention(macs, norm_elements, pool_elements, convention):
    """A multiply-add count in a paper's FLOP convention."""
    if convention == '2macs':
        return 2 * macs
    if convention == 'thop':
        return macs + 2 * norm_elements + pool_elements
    return macs


# ----------------------------------------------------------------------------------------------
# measuring the ledger
# ----------------------------------------------------------------------------------------------
def _part(row):
    """What is measured: the whole classifier; the detector's backbone (FPN and heads are the
    same in every row of a detection table); the whole segmentor (EANet's operator sits in the
    decode head)."""
    return 'backbone' if row['task'] == 'detection' else 'model'


def measure_all(papers, log=print):
    """``{(config, part, hw or None): measurement}`` for every row that needs one."""
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
                key = (row['config'], _part(row))
                job = jobs.setdefault(key, dict(flops=set(), groups={}))
                job['groups'].update(row.get('param_groups') or {})
                job['flops'].add(tuple(row['input']))
    results = {}
    for (config, part), job in jobs.items():
        t0 = time.time()
        model = build(config, part)
        res = count_params(model, job['groups'])
        results[(config, part, None)] = res
        for hw in sorted(job['flops']):
            try:
                results[(config, part, hw)] = count_flops(model, part, hw)
            except Exception as e:  # noqa: BLE001  (reported in the doc, not fatal)
                results[(config, part, hw)] = dict(error=f'{type(e).__name__}: {e}'[:200])
        del model
        log(f'  measured {config} ({part}) in {time.time() - t0:.1f}s')
    return results


# ----------------------------------------------------------------------------------------------
# comparing
# ----------------------------------------------------------------------------------------------
class PaperNumber(float):
    """A float that remembers how the data file (the paper) printed it: ``42.10`` stays
    ``42.10``."""

    def __new__(cls, text):
        obj = super().__new__(cls, text)
        obj.text = text
        return obj

    def __repr__(self):
        return self.text


def within(ours, paper):
    """Within 2% of the paper's figure (no allowance for the paper's rounding: a figure the
    paper prints as "0.07" and we measure as 0.066 is 5% off and needs an explanation)."""
    if paper == 0:
        return ours == 0
    return abs(ours - paper) <= TOLERANCE * abs(paper)


def gap(ours, paper):
    return f'{100 * (ours - paper) / paper:+.1f}%'


def evaluate(papers, results):
    """Per row: measured figures, comparisons and format keys. Mutates the rows."""
    for paper in papers:
        conv = paper.get('flops_convention', 'macs')
        for table in paper['tables']:
            rows = {r['name']: r for r in table['rows']}
            for row in table['rows']:
                row['_figures'] = []  # (label, paper figure, ours, status)
                row['_keys'] = {}
                if not row.get('config'):
                    row['_figures'] = [(label, row['paper'][k], None, 'missing')
                                       for label, k in FIGURES if k in row['paper']]
                    continue
                part = _part(row)
                p = results.get((row['config'], part, None))
                f = results.get((row['config'], part, tuple(row['input'])))
                keys = row['_keys']
                if p:
                    keys.update(params=p['params'], params_m=p['params'] / 1e6,
                                pos_params=p['pos_params'],
                                params_no_pos=p['params'] - p['pos_params'],
                                params_no_pos_m=(p['params'] - p['pos_params']) / 1e6)
                    for g, n in p['groups'].items():
                        keys[f'group_{g}'] = n
                    if 'params_m' in row['paper']:
                        keys['params_no_pos_gap'] = gap(keys['params_no_pos_m'],
                                                        row['paper']['params_m'])
                if f and 'error' not in f:
                    fac = 2 if conv == '2macs' else 1
                    keys.update(macs_g=f['macs'] / 1e9, conv_macs_g=f['conv_macs'] / 1e9,
                                attn_macs_g=f['attn_macs'] / 1e9,
                                conv_flops_g=fac * f['conv_macs'] / 1e9,
                                attn_flops_g=fac * f['attn_macs'] / 1e9,
                                flops_g=in_convention(f['macs'], f['norm_elements'],
                                                      f['pool_elements'], conv) / 1e9)
                base = rows.get(row.get('baseline'))
                if base is not None and base.get('config'):
                    bp = results.get((base['config'], _part(base), None))
                    bf = results.get((base['config'], _part(base), tuple(base['input'])))
                    if p and bp:
                        keys['extra_params'] = p['params'] - bp['params']
                        keys['extra_params_m'] = keys['extra_params'] / 1e6
                        for g, n in p['groups'].items():
                            keys[f'extra_params_no_{g}'] = keys['extra_params'] - n
                            keys[f'extra_params_no_{g}_m'] = (keys['extra_params'] - n) / 1e6
                    if f and bf and 'error' not in f and 'error' not in bf:
                        keys['extra_macs_g'] = (f['macs'] - bf['macs']) / 1e9
                        keys['extra_flops_g'] = (
                            in_convention(f['macs'], f['norm_elements'], f['pool_elements'],
                                          conv) -
                            in_convention(bf['macs'], bf['norm_elements'], bf['pool_elements'],
                                          conv)) / 1e9
                        if 'flops_g' in row['paper'] and 'flops_g' in base['paper']:
                            keys['saving_g'] = -keys['extra_macs_g']
                            keys['paper_saving_g'] = (base['paper']['flops_g'] -
                                                      row['paper']['flops_g'])
                explained = bool(row.get('explanation') or table.get('explanation'))
                comparable_flops = row.get('flops_scope') in (None, 'model')
                if 'flops_g' in row['paper'] and 'conv_flops_g' in keys:
                    keys['conv_flops_gap'] = gap(keys['conv_flops_g'], row['paper']['flops_g'])
                for label, pkey in FIGURES:
                    if pkey not in row['paper']:
                        continue
                    pv, ov = row['paper'][pkey], keys.get(pkey)
                    measured = results.get((row['config'], part,
                                            None if 'params' in pkey else tuple(row['input'])))
                    if ov is None and measured is None:
                        status = 'skipped'  # --check leaves dense-prediction FLOPs out
                    elif ov is None:
                        status = 'ERROR'  # the model did not run
                    elif pkey == 'flops_g' and not comparable_flops and explained:
                        status = 'not comparable'  # and the data file says why
                    elif within(ov, pv):
                        status = 'ok'
                    else:
                        status = 'explained' if explained else 'FAIL'
                    row['_figures'].append((label, pv, ov, status))
                if f and 'error' in f:
                    row['_flops_error'] = f['error']
    return papers


def format_keys(row):
    """What an ``explanation:`` can use, measured for its row.

    ``params``, ``params_m``, ``pos_params`` (relative-position tables), ``params_no_pos``,
    ``params_no_pos_m``, ``params_no_pos_gap`` (that against the paper's figure),
    ``group_<name>`` (the row's ``param_groups``: name -> regex over parameter names);
    ``macs_g``, ``flops_g`` (in the paper's convention), ``conv_macs_g`` / ``conv_flops_g``
    (convolutions and fc), ``attn_macs_g`` / ``attn_flops_g`` (the rest), ``conv_flops_gap``;
    with a ``baseline:`` row: ``extra_params``, ``extra_params_m``,
    ``extra_params_no_<group>``, ``extra_params_no_<group>_m``, ``extra_macs_g``,
    ``extra_flops_g``, and for detection FLOPs ``saving_g`` / ``paper_saving_g``.
    """
    return row.get('_keys', {})


def explanation_text(text, row):
    try:
        return ' '.join(str(text).split()).format(**format_keys(row))
    except (KeyError, ValueError, IndexError) as e:
        return ' '.join(str(text).split()) + f' [unfilled: {e}]'


def failures(papers):
    out = []
    for paper in papers:
        for table in paper['tables']:
            for row in table['rows']:
                for label, pv, ov, status in row.get('_figures', []):
                    if status == 'ERROR':
                        out.append(f"{paper['paper']} {table['id']} '{row['name']}': {label} "
                                   'could not be measured')
                    elif status == 'FAIL':
                        out.append(f"{paper['paper']} {table['id']} '{row['name']}': {label} "
                                   f'ours {ov:.3f} vs paper {pv} ({gap(ov, pv)}), no explanation')
    return out


def summary(papers):
    """Per paper and table: rows, implemented, figures within 2%, explained, failing, missing."""
    out = []
    for paper in papers:
        for table in paper['tables']:
            s = dict(paper=paper['paper'], table=table['id'], rows=len(table['rows']),
                     implemented=0, missing=0, ok=0, explained=0, fail=0, skipped=0)
            for row in table['rows']:
                s['implemented' if row.get('config') else 'missing'] += 1
                for _, _, _, status in row.get('_figures', []):
                    if status == 'skipped':
                        s['skipped'] += 1
                    if status in ('missing', 'skipped'):
                        continue
                    key = {'ok': 'ok', 'explained': 'explained',
                           'not comparable': 'explained'}.get(status, 'fail')
                    s[key] += 1
            out.append(s)
    return out


# ----------------------------------------------------------------------------------------------
# cross-check
# ----------------------------------------------------------------------------------------------
def cross_check(configs=CROSS_CHECK, hw=(224, 224)):
    """FlopCounterMode (ours) against mmengine's jit-trace FlopAnalyzer on real tensors."""
    import torch
    from mmengine.analysis import FlopAnalyzer

    from mmattn.models.layers.attention import default_attn_impl
    rows = []
    for config in configs:
        model = build(config, 'model')
        ours = count_flops(model, 'model', hw)

        class _Tensor(torch.nn.Module):

            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x, mode='tensor')
        torch.manual_seed(0)
        with torch.no_grad(), default_attn_impl('explicit'):
            fa = FlopAnalyzer(_Tensor(model), (torch.randn(1, 3, *hw), ))
            fa.unsupported_ops_warnings(False)
            fa.uncalled_modules_warnings(False)
            fa.tracer_warnings('none')
            by_op = fa.by_operator()
            skipped = sorted({op for op in fa.unsupported_ops() if 'PythonOp' in op})
        counted = sum(v for k, v in by_op.items()
                      if k in ('conv', 'linear', 'matmul', 'bmm', 'einsum', 'addmm'))
        rows.append(dict(config=config, ours=ours['macs'], analyzer=counted,
                         analyzer_norm=by_op.get('batch_norm', 0), skipped=skipped,
                         analytic=ours['analytic']))
        del model
    return rows


def trained_metric(row):
    """The metric of a training run of ours: ``log:`` in the data file names an mmengine
    ``vis_data/scalars.json`` (or ``*.log.json``) committed to the repository; the last record
    holding ``log_metric`` gives the figure. Without one: "not trained here" and why."""
    if not row.get('log'):
        return NOT_TRAINED[row['task']]
    path = osp.join(REPO, row['log'])
    if not osp.isfile(path):
        return f'log {row["log"]} not found'
    value = None
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if row.get('log_metric') in record:
                value = record[row['log_metric']]
    if value is None:
        return f'no {row.get("log_metric")} in {row["log"]}'
    return f'{value} ([log](../{row["log"]}))'


# ----------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------
def _num(v, digits):
    return f'{v:,.{digits}f}'


def _cfg_link(cfg):
    return f'[{osp.basename(cfg)}](../{cfg})'


def _fmt_paper(v):
    return getattr(v, 'text', None) or str(v)


def render(papers, results, cross=None, command='python tools/analysis_tools/paper_tables.py'):
    L = []
    w = L.append
    w('# Reproduction ledger: the papers\' tables against our configs')
    w('')
    w(f'Generated by `{command}` from the data files in '
      '[docs/paper_tables/](paper_tables/) (the papers\' figures, the config of every row, '
      'explanations); every figure marked "ours" is measured by that command from the config. '
      'Do not edit by hand: change a data file and run the command (`--check` compares with '
      'the papers without writing; `--diff` tells whether this file is up to date; '
      'tests/test_tools/test_paper_tables.py runs both).')
    w('')
    w('Paper figures are the paper\'s, as printed (or, where the seed text has no tables, from '
      'the source named in the section\'s heading). "ours" columns: parameters and FLOPs of the '
      'model built from the config. "ours (trained)": the metric of a training run of ours, read '
      'from the log a row names (`log:` in the data file, an mmengine `scalars.json`); none '
      'exists yet: the machine this project is built on has no GPU and no ImageNet, COCO or '
      'ADE20K, so every row reads "not trained here". Rows that no config implements are listed '
      'as missing, with the reason.')
    w('')
    w('## Method')
    w('')
    w('- **Parameters**: ImageNet rows count the whole classifier (fc included, as the papers '
      'do); detection rows the backbone (the papers give no parameter column there; FPN and '
      'heads are the same in every row); segmentation rows the whole segmentor (EANet\'s '
      'operator sits in the decode head). Relative-position tables are also counted apart.')
    w('- **FLOPs**: multiply-adds of one image, counted by `torch.utils.flop_counter.'
      'FlopCounterMode` while the model runs on shape-only tensors (`FakeTensorMode`: no memory, '
      'no arithmetic, so even the explicit (HW)^2 attention of a 1333x800 image costs a second). '
      'The counter sits below autograd, so it sees inside custom `autograd.Function`s (the '
      'chunked attention kernel, the LA-layer\'s local attention), which jit-trace counters such '
      'as mmengine\'s `FlopAnalyzer` skip as `prim::PythonOp`. Counted: convolutions, `mm`, '
      '`addmm`, `bmm`, `baddbmm` (einsum and matmul lower to these) and '
      '`scaled_dot_product_attention` (the CPU flash kernel is missing from torch\'s table; we '
      'add `B*heads*L*S*(d+d_v)`). Attention runs on the explicit path, whose matmuls are the '
      'papers\' maths. Not counted: BatchNorm, activations, softmax, pooling, bilinear '
      'sampling and element-wise products. The LA-layer computes q.k~ and the weighted sum '
      'element-wise, which no counter sees: every `LALayer` counts `LALayer.flops(h, w)` '
      '(analytic, the paper\'s convention) instead of what the counter saw inside it (its '
      'convolutions, checked equal to the analytic convolution part); MRLA-base\'s '
      'attention-weighted sum of the value maps (`addcmul`, block t of a stage: t multiply-adds '
      'per value element) is added to what the counter saw.')
    w('- **Conventions**: a paper\'s FLOPs are compared after converting ours to its convention: '
      + '; '.join(f'{p["paper"]}: {CONVENTIONS[p.get("flops_convention", "macs")]}'
                  for p in papers) + '.')
    w('- **Tolerance**: a figure is within tolerance when it is within 2% of the paper\'s '
      '(nothing allowed for the paper\'s rounding). Anything else, and any figure of ours whose '
      'scope differs from the paper\'s (backbone against a whole detector), needs a written '
      'explanation in the data file (shown under the table; its numbers are filled in by the '
      'tool); `--check` exits non-zero otherwise.')
    w('')
    if cross:
        w('### FLOP counter cross-check (224x224, whole classifier)')
        w('')
        w('mmengine\'s `FlopAnalyzer` (jit trace on real tensors; its conv, linear, matmul, bmm '
          'and einsum counts, BatchNorm left out) against our count:')
        w('')
        w('| config | ours (GMACs) | FlopAnalyzer (GMACs) | difference | FlopAnalyzer skips | '
          'analytic replacements (counter saw / analytic, GMACs) |')
        w('|---|---:|---:|---:|---|---|')
        for c in cross:
            ana = '; '.join(
                f'{k}: {v["seen"] / 1e9:.4f} / {v["total"] / 1e9:.4f}'
                + (f' (convs {v["conv_seen"] / 1e9:.3f} / {v["conv_analytic"] / 1e9:.3f})'
                   if v['conv_analytic'] else '') for k, v in c['analytic'].items()) or '-'
            w(f'| {_cfg_link(c["config"])} | {c["ours"] / 1e9:.3f} | {c["analyzer"] / 1e9:.3f} | '
              f'{(c["ours"] - c["analyzer"]) / 1e9:+.3f} | {", ".join(c["skipped"]) or "-"} | '
              f'{ana} |')
        w('')
    w('## Summary')
    w('')
    w('Rows per table; "figures" are the paper\'s parameter and FLOP figures that a config of '
      'ours can be measured against.')
    w('')
    w('| paper | table | rows | implemented | missing | figures within 2% | explained | '
      'unexplained |')
    w('|---|---|---:|---:|---:|---:|---:|---:|')
    for s in summary(papers):
        w(f'| {s["paper"]} | {s["table"]} | {s["rows"]} | {s["implemented"]} | {s["missing"]} | '
          f'{s["ok"]} | {s["explained"]} | {s["fail"]} |')
    w('')
    for paper in papers:
        w(f'## {paper["paper"]}: {paper["title"]}')
        w('')
        w(f'Source: {paper["source"]}. Data: [{paper["file"]}]'
          f'({osp.relpath(osp.join(REPO, paper["file"]), osp.dirname(DOC))}). FLOP '
          f'convention: {CONVENTIONS[paper.get("flops_convention", "macs")]}.'
          + (f' {" ".join(paper["flops_note"].split())}' if paper.get('flops_note') else ''))
        w('')
        for table in paper['tables']:
            _render_table(w, paper, table)
    _render_unreferenced(w, papers)
    return '\n'.join(L).rstrip() + '\n'


def _render_table(w, paper, table):
    h, wd = table['input']
    w(f'### {paper["paper"]} {table["id"]}: {table["caption"]}')
    w('')
    if table['task'] == 'classification':
        scope = f'ours: the whole classifier, FLOPs at {h}x{wd}'
    elif table['task'] == 'segmentation':
        scope = (f'ours: the whole segmentor\'s parameters (backbone, decode and auxiliary '
                 f'heads) and its multiply-adds at {h}x{wd} (backbone and decode head; the '
                 'auxiliary head only trains)')
    else:
        scope = (f'ours: the backbone\'s parameters and multiply-adds at {h}x{wd} (FPN and heads '
                 'are the same in every row)')
    w(f'{table["dataset"]}; {scope}.'
      + (f' {" ".join(table["note"].split())}' if table.get('note') else ''))
    w('')
    fig_labels = [label for label, _ in FIGURES
                  if any(label == f[0] for r in table['rows'] for f in r['_figures'])]
    info = []  # measured, with no paper column to compare with
    if table['task'] == 'classification':
        if 'params (M)' not in fig_labels:
            info.append(('params (M) ours', 'params_m', 2))
        if 'FLOPs (G)' not in fig_labels:
            info.append(('GMACs ours', 'macs_g', 2))
    else:
        what = 'segmentor' if table['task'] == 'segmentation' else 'backbone'
        info.append((f'{what} params (M) ours', 'params_m', 2))
        if 'FLOPs (G)' not in fig_labels:
            info.append((f'{what} GMACs ours', 'macs_g', 1))
    metric_cols = list((table.get('columns') or {}).items())
    head = ['row (paper)', 'config']
    for label in fig_labels:
        head += [f'{label} paper', f'{label} ours']
    head += [label for label, _, _ in info]
    head += [f'{lab} paper' for _, lab in metric_cols]
    head.append('ours (trained)')
    w('| ' + ' | '.join(head) + ' |')
    w('|' + '|'.join('---' for _ in head) + '|')
    notes = []
    if table.get('explanation'):
        notes.append(('every row', explanation_text(table['explanation'], {})))
    for row in table['rows']:
        keys = row['_keys']
        cells = [row['name'].replace('|', '\\|')]
        if row.get('explanation') and row['_figures']:
            notes.append((row['name'], explanation_text(row['explanation'], row)))
            cells[0] += f' [{len(notes)}]'
        marker = f' [{len(notes)}]' if row.get('explanation') else ' [1]'
        if not row.get('config'):
            cells.append(f'missing: {" ".join(row["missing"].split())}')
        else:
            cells.append('<br>'.join(_cfg_link(c) for c in row_configs(row)))
        figs = {lab: (pv, ov, st) for lab, pv, ov, st in row['_figures']}
        for label in fig_labels:
            if label not in figs:  # no paper figure: ours alone, where measured
                key = dict(FIGURES)[label]
                ours = keys.get(key) if row['task'] == 'classification' else None
                cells += ['', f'{ours:.2f}' if ours is not None else '']
                continue
            pv, ov, st = figs[label]
            digits = 3 if label.startswith('extra') else 2
            cells.append(_fmt_paper(pv))
            if st in ('missing', 'skipped'):
                cells.append('')
            elif ov is None:
                cells.append('- (error)')
            elif st == 'not comparable':
                cells.append(f'backbone {ov:.1f} (n/c{marker})')
            else:
                flag = {'ok': '', 'explained': marker, 'FAIL': ' **UNEXPLAINED**'}[st]
                cells.append(f'{ov:.{digits}f} ({gap(ov, pv)}){flag}')
        for _, key, digits in info:
            v = keys.get(key)
            # a dense-prediction row in an ImageNet table (MRLA's claim): its backbone
            suffix = ' (backbone)' if table['task'] != row['task'] else ''
            cells.append('' if v is None else f'{v:.{digits}f}{suffix}')
        for k, _ in metric_cols:
            cells.append(_fmt_paper(row['paper'][k]) if k in row['paper'] else '')
        cells.append(trained_metric(row) if row.get('config') else '-')
        w('| ' + ' | '.join(str(c) for c in cells) + ' |')
        if 'saving_g' in keys and row.get('flops_scope') == 'backbone':
            notes.append((row['name'], f'saving over {row["baseline"]}: paper '
                          f'{keys["paper_saving_g"]:g} G (whole detector), ours '
                          f'{keys["saving_g"]:.1f} G multiply-adds (backbone)'))
    w('')
    for i, (name, text) in enumerate(notes, 1):
        w(f'{i}. *{name}*: {text}')
    for r in table['rows']:
        if r.get('note'):
            w(f'- *{r["name"]}*: {" ".join(r["note"].split())}')
        if r.get('_flops_error'):
            w(f'- *{r["name"]}*: FLOPs not measured: {r["_flops_error"]}')
    if notes or any(r.get('note') or r.get('_flops_error') for r in table['rows']):
        w('')


def _render_unreferenced(w, papers):
    used = {c for p in papers for t in p['tables'] for r in t['rows'] for c in row_configs(r)}
    extra = [osp.relpath(path, REPO)
             for path in sorted(glob.glob(osp.join(REPO, 'configs', '*', '*.py')))
             if not any(part.startswith('_') for part in osp.relpath(path, REPO).split(os.sep))]
    extra = [rel for rel in extra if rel not in used]
    w('## Configs that no paper row names')
    w('')
    w('Baselines and variants outside the papers\' tables, pre-training configs and '
      'experiments of ours (see each config\'s header and its folder\'s README):')
    w('')
    by_dir = defaultdict(list)
    for rel in extra:
        by_dir[osp.dirname(rel)].append(rel)
    for d, rels in by_dir.items():
        w(f'- {d}/: ' + ', '.join(_cfg_link(r) for r in rels))
    if not extra:
        w('(none)')
    w('')


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--check', action='store_true',
                   help='exit 1 on a figure more than 2%% from the paper\'s without an '
                   'explanation (or one not measured, or a data error); writes nothing')
    p.add_argument('--diff', action='store_true',
                   help='exit 1 if docs/paper_tables.md differs from a regeneration; writes '
                   'nothing')
    p.add_argument('--out', default=DOC, help='where to write the doc (default: %(default)s)')
    p.add_argument('--data-dir', default=DATA_DIR)
    p.add_argument('--no-cross-check', action='store_true',
                   help="skip the FlopAnalyzer comparison section (faster; the doc then "
                   "differs from the committed one)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    papers = load_papers(args.data_dir)
    errors = data_errors(papers)
    for e in errors:
        print(f'data error: {e}')
    print('measuring every row\'s config ...', flush=True)
    results = measure_all(papers, log=lambda m: print(m, flush=True))
    evaluate(papers, results)
    fails = failures(papers)
    for paper in papers:
        for table in paper['tables']:
            for row in table['rows']:
                for label, pv, ov, status in row.get('_figures', []):
                    ours = '-' if ov is None else f'{ov:.3f} ({gap(ov, pv)})'
                    print(f"  {paper['paper']} {table['id']} {row['name']}: {label} paper "
                          f'{_fmt_paper(pv)} ours {ours}: {status}')
    for s in summary(papers):
        print(f'{s["paper"]:>9} {s["table"]:<6} rows {s["rows"]:>2}  implemented '
              f'{s["implemented"]:>2}  missing {s["missing"]:>2}  within 2% {s["ok"]:>2}  '
              f'explained {s["explained"]:>2}  unexplained {s["fail"]:>2}')
    for f in fails:
        print(f'UNEXPLAINED: {f}')
    status = 1 if (fails or errors) else 0
    if args.check:
        print(f'--check: {len(fails)} unexplained figure(s), {len(errors)} data error(s) '
              f'({time.time() - t0:.0f}s)')
        if not args.diff:
            return status
    cross = None if args.no_cross_check else cross_check()
    doc = render(papers, results, cross)
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
