"""Parameter counts: the total, the relative-position tables' share, named groups."""
import re

__all__ = ['count_params', 'POS_TABLE_RE']

# relative-position tables (LESA, AA): some papers leave them out of their parameter counts
POS_TABLE_RE = re.compile(r'(^|\.)(relative|rel_height|rel_width)$')


def count_params(model, groups=None):
    """``dict(params, pos_params, groups)``: every parameter of ``model``, those of the
    relative-position tables, and per name in ``groups`` (name -> regex searched in the
    parameter names) the parameters it matches."""
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
