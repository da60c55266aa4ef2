"""The backbone benchmark's tables and machine description."""
import datetime
import os
import platform

from .bench_cases import label
from .interleave import core_count, cpu_model, load_average, machine_line


def ratio_table(results, markdown=True):
    """One row per backbone, time and peak-memory ratios to ResNet-50 at every size."""
    sizes = list(results)
    names = []
    for res in results.values():
        names += [n for n in res if n not in names]
    head = ['backbone'] + [f'{s} {k}' for s in sizes for k in ('time/R50', 'peak/R50')]
    lines = []
    if markdown:
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|---|' + '---:|' * (len(head) - 1))
    else:
        lines.append(f'{head[0]:<30}' + ''.join(f' {h:>20}' for h in head[1:]))
    for name in names:
        cells = []
        for s in sizes:
            r = results[s].get(name, {})
            cells.append(f'{r["time_ratio"]:.2f}' if 'time_ratio' in r else '-')
            cells.append(f'{r["peak_ratio"]:.2f}' if 'peak_ratio' in r else '-')
        if markdown:
            lines.append(f'| {label(name)} | ' + ' | '.join(cells) + ' |')
        else:
            lines.append(f'{label(name):<30}' + ''.join(f' {c:>20}' for c in cells))
    return '\n'.join(lines)


def format_table(results, markdown=False):
    lines = []
    head = ('backbone', 'size (HxW/batch)', 'time (s)', 'time / R50', 'peak (MiB)',
            'peak / R50', 'note')
    if markdown:
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|---|---|---:|---:|---:|---:|---|')
    else:
        lines.append(f'{head[0]:<30} {head[1]:>16} {head[2]:>9} {head[3]:>10} {head[4]:>10} '
                     f'{head[5]:>10}  {head[6]}')
    for sname, res in results.items():
        for name, r in res.items():
            t = f'{r["time"]:.3f}' if 'time' in r else '-'
            tr = f'{r["time_ratio"]:.2f}' if 'time_ratio' in r else '-'
            m = f'{r["peak"] / 2**20:.0f}' if 'peak' in r else '-'
            mr = f'{r["peak_ratio"]:.2f}' if 'peak_ratio' in r else '-'
            note = r.get('skipped') or r.get('error') or r.get('memory_error') or ''
            if note and 'skipped' in r:
                note = 'skipped: ' + note
            if r.get('runs') == 0:
                note = 'one step (the warm-up): ' * bool(note) + (note or 'one step (the warm-up)')
            if markdown:
                lines.append(f'| {label(name)} | {sname} | {t} | {tr} | {m} | {mr} | {note} |')
            else:
                lines.append(f'{label(name):<30} {sname:>16} {t:>9} {tr:>10} {m:>10} {mr:>10}'
                             f'  {note}')
    return '\n'.join(lines)


def machine_info(device):
    import torch
    info = dict(date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
                python=platform.python_version(), torch=torch.__version__,
                threads=torch.get_num_threads(), nproc=os.cpu_count(), device=device)
    info['cpu'] = cpu_model()
    info['usable_cores'] = core_count()[0]
    info['machine'] = machine_line()
    info['load'] = load_average()
    if str(device).startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


