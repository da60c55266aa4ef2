"""The ledger's comparison: our measurements against the papers' figures, row by row."""
from ..flops import in_convention
from .data import FIGURES, gap, part_of, within


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
                part = part_of(row)
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
                                flops_g=in_convention(f, conv) / 1e9)
                base = rows.get(row.get('baseline'))
                if base is not None and base.get('config'):
                    bp = results.get((base['config'], part_of(base), None))
                    bf = results.get((base['config'], part_of(base), tuple(base['input'])))
                    if p and bp:
                        keys['extra_params'] = p['params'] - bp['params']
                        keys['extra_params_m'] = keys['extra_params'] / 1e6
                        for g, n in p['groups'].items():
                            keys[f'extra_params_no_{g}'] = keys['extra_params'] - n
                            keys[f'extra_params_no_{g}_m'] = (keys['extra_params'] - n) / 1e6
                    if f and bf and 'error' not in f and 'error' not in bf:
                        keys['extra_macs_g'] = (f['macs'] - bf['macs']) / 1e9
                        keys['extra_flops_g'] = (in_convention(f, conv) -
                                                 in_convention(bf, conv)) / 1e9
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


