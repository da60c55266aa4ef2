"""Every config's learning-rate schedule, stepped as mmengine's Runner steps it, against the
schedule its paper (or the stock mmdet/mmseg recipe) states.

A wrong schedule wastes days of 8-GPU time without an error (``MultiStepLR(begin=5,
milestones=[30, ...])`` drops at epoch 35: mmengine counts milestones from ``begin``;
``ConstantLR(factor=0.01)`` multiplies the lr it finds, not the base). So the expected
schedules are written below once, from the papers' text, as what a user can check in a log: the
epochs where the lr drops, how long the warm-up runs, the lr at the end. Each config is matched
to one by its name; a config that matches none fails, so a new config needs a row here.

What is simulated: the config's own ``param_scheduler`` and ``optim_wrapper.optimizer.lr``,
built with mmengine (``build_iter_from_epoch`` for ``convert_to_iter_based``), stepped per
iteration and per epoch in the Runner's order, with an epoch of ``EPOCH_LEN`` iterations (longer
than every iteration-based warm-up, as a real COCO/ImageNet epoch is). Iteration-based loops
(mmseg) run their whole length. Configs with the same schedule share one simulation.
"""
import copy
import math
import re
from functools import lru_cache

import pytest

from config_cache import all_configs, load

CONFIGS = all_configs()

# name: epochs (or iters), warm-up (first epoch / iteration at the base lr), lr drop epochs,
# lr at the end (relative to the base lr, or absolute with final_abs), shape between drops
SCHEDULES = {
    # mmdet 1x: linear warm-up over 500 iterations (start 0.001), x0.1 after epochs 8 and 11
    'mmdet 1x': dict(epochs=12, warmup_iters=500, drops=(8, 11), final=1e-2),
    # mmdet 20e (LESA Table 3 "20": "{24, 16, 19}" in its text, 20 epochs in its configs and
    # mmdet's HTC 20e): x0.1 after 16 and 19
    'mmdet 20e': dict(epochs=20, warmup_iters=500, drops=(16, 19), final=1e-2),
    # AA Table 5, the paper's own setting (150 epochs from scratch); warm-up and drop epochs
    # are ours (configs/aa/README.md), written here so they cannot move silently
    'AA RetinaNet scratch 150e': dict(epochs=150, warmup_iters=1000, drops=(120, 140),
                                      final=1e-2),
    # AA appendix A.2: 100 epochs, 5% (5 epochs) linear warm-up, /10 at 30, 60, 80, 90
    'AA ImageNet': dict(epochs=100, warmup_epochs=5, drops=(30, 60, 80, 90), final=1e-4),
    # MRLA official train.py: 3 warm-up epochs, then 0.1 * 0.1 ** (epoch // 30)
    'MRLA ImageNet': dict(epochs=100, warmup_epochs=3, drops=(30, 60, 90), final=1e-3),
    # LESA: 90 epochs, 5 warm-up epochs, cosine to 0
    'LESA ImageNet': dict(epochs=90, warmup_epochs=5, cosine=(5, 90), final=0.),
    # LA-layer Sec. 4.1 (CoTNet's): 100 epochs, 5 warm-up epochs, cosine to 0
    'LA ImageNet': dict(epochs=100, warmup_epochs=5, cosine=(5, 100), final=0.),
    # EAMLP args.yaml: 300 epochs (5 warm-up from 1e-6), cosine to min lr 1e-5, then 10
    # cool-down epochs at 1e-5
    'EAMLP ImageNet': dict(epochs=310, warmup_epochs=5, cosine=(5, 300), final=1e-5,
                           final_abs=True, hold=(300, 310)),
    # mmseg: poly (power 0.9) from the base lr to 1e-4 over the whole run, no warm-up
    'mmseg 80k': dict(iters=80000, poly=0.9, final=1e-4, final_abs=True),
    'mmseg 160k': dict(iters=160000, poly=0.9, final=1e-4, final_abs=True),
    # LA-layer Sec. 4.3: 120 epochs of ADE20K at batch 16 = 151,575 iterations
    'LA ADE20K 120e': dict(iters=151575, poly=0.9, final=1e-4, final_abs=True),
}
RULES = (
    (r'^aa/.*_scratch-150e_coco', 'AA RetinaNet scratch 150e'),
    (r'_20e_coco', 'mmdet 20e'),
    (r'[_-]1x_coco', 'mmdet 1x'),
    (r'^aa/.*_in1k', 'AA ImageNet'),
    (r'^mrla/.*_in1k', 'MRLA ImageNet'),
    (r'^lesa/.*_in1k', 'LESA ImageNet'),
    (r'^la_layer/.*_in1k', 'LA ImageNet'),
    (r'^external_attention/eamlp', 'EAMLP ImageNet'),
    (r'-120e_ade20k', 'LA ADE20K 120e'),
    (r'-80k_ade20k', 'mmseg 80k'),
    (r'-160k_ade20k', 'mmseg 160k'),
)
EPOCH_LEN = 1001


def schedule_of(rel):
    for pattern, name in RULES:
        if re.search(pattern, rel):
            return name
    raise AssertionError(f'{rel}: no expected schedule in tests/test_configs/test_schedules.py '
                         '(add a row to SCHEDULES and RULES)')


def _freeze(x):
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    return x


@lru_cache(maxsize=None)
def _simulate(key):
    """lr at the start of every epoch and of every iteration of epoch 0 (epoch loops), or of
    every iteration (iteration loops)."""
    import torch
    from mmengine.registry import PARAM_SCHEDULERS
    schedulers_cfg, base_lr, length, by_epoch_loop = key
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    epoch_len = EPOCH_LEN if by_epoch_loop else 1
    schedulers = []
    for s in schedulers_cfg:
        s = dict(s)
        s.pop('_scope_', None)
        cls = PARAM_SCHEDULERS.get(s.pop('type'))
        if s.pop('convert_to_iter_based', False) and s.get('by_epoch', True):
            schedulers.append(cls.build_iter_from_epoch(opt, epoch_length=epoch_len, **s))
        else:
            schedulers.append(cls(opt, **s))
    lr = lambda: opt.param_groups[0]['lr']  # noqa: E731
    if not by_epoch_loop:
        out = []
        for _ in range(length):
            out.append(lr())
            for s in schedulers:
                s.step()
        return out, None
    per_epoch, first_epoch = [], []
    for epoch in range(length):
        per_epoch.append(lr())
        for _ in range(epoch_len):
            if epoch == 0:
                first_epoch.append(lr())
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return per_epoch, first_epoch


def lr_curve(cfg):
    loop = cfg.train_cfg
    by_epoch_loop = loop.get('type', 'EpochBasedTrainLoop') == 'EpochBasedTrainLoop' \
        and loop.get('by_epoch', True)
    length = loop['max_epochs'] if by_epoch_loop else loop['max_iters']
    scheds = cfg.param_scheduler
    scheds = [scheds] if isinstance(scheds, dict) else scheds
    key = (_freeze([dict(s) for s in scheds]), cfg.optim_wrapper.optimizer.lr, length,
           by_epoch_loop)
    return _simulate(key), length, by_epoch_loop


def check_schedule(cfg, expected):
    """A list of what differs between the config's schedule and ``expected``."""
    (curve, first_epoch), length, by_epoch_loop = lr_curve(cfg)
    base = cfg.optim_wrapper.optimizer.lr
    errors = []
    want_len = expected.get('epochs', expected.get('iters'))
    if length != want_len:
        errors.append(f'length {length}, expected {want_len}')
        return errors
    at_base = [i for i, v in enumerate(curve) if math.isclose(v, base, rel_tol=1e-6)]
    if 'warmup_iters' in expected:
        # mmengine's LinearLR reaches its end factor at its last step, end - 1
        reach = next((i for i, v in enumerate(first_epoch)
                      if math.isclose(v, base, rel_tol=1e-6)), None)
        if reach != expected['warmup_iters'] - 1 or first_epoch[0] > 0.0100001 * base:
            errors.append(f'warm-up reaches the base lr at iteration {reach}, expected '
                          f"{expected['warmup_iters'] - 1} (from {first_epoch[0]:.3g})")
    elif 'warmup_epochs' in expected:
        reach = at_base[0] if at_base else None
        if reach != expected['warmup_epochs'] or curve[0] > 0.0100001 * base:
            errors.append(f'warm-up reaches the base lr at epoch {reach}, expected '
                          f"{expected['warmup_epochs']} (from {curve[0]:.3g})")
    elif not math.isclose(curve[0], base, rel_tol=1e-6):
        errors.append(f'lr at the start {curve[0]:.4g}, expected the base lr {base:.4g}')
    if 'drops' in expected:
        drops = tuple(e for e in range(1, length) if curve[e] < 0.5 * curve[e - 1])
        if drops != expected['drops']:
            errors.append(f'lr drops at epochs {drops}, expected {expected["drops"]}')
        start = expected.get('warmup_epochs', 1)
        levels = {round(v / base, 9) for v in curve[start:]}
        if len(levels) != len(expected['drops']) + 1:
            errors.append(f'lr takes {len(levels)} values after the warm-up, expected '
                          f'{len(expected["drops"]) + 1} (steps only)')
    if 'cosine' in expected:
        begin, end = expected['cosine']
        seg = curve[begin:end]
        if any(b > a * (1 + 1e-9) for a, b in zip(seg, seg[1:])):
            errors.append('the cosine part is not non-increasing')
        eta_min = expected['final'] if expected.get('final_abs') else expected['final'] * base
        mid = curve[begin + (end - begin) // 2]
        want_mid = eta_min + (base - eta_min) * (
            1 + math.cos(math.pi * ((end - begin) // 2) / (end - begin))) / 2
        if not math.isclose(mid, want_mid, rel_tol=0.05):
            errors.append(f'lr at the middle of the cosine {mid:.4g}, expected {want_mid:.4g}')
    if 'poly' in expected:
        half = length // 2
        eta_min = expected['final']
        want = eta_min + (base - eta_min) * (1 - half / length) ** expected['poly']
        if not math.isclose(curve[half], want, rel_tol=0.01):
            errors.append(f'lr at iteration {half} {curve[half]:.4g}, expected {want:.4g} '
                          f"(poly {expected['poly']} over {length} iterations)")
    final = curve[-1]
    want = expected['final'] if expected.get('final_abs') else expected['final'] * base
    tol = 0.02 * want if want else 1e-3 * base
    if abs(final - want) > tol:
        errors.append(f'final lr {final:.4g}, expected {want:.4g}')
    begin, end = expected.get('hold', (length, length))
    held = [e for e in range(begin, end) if abs(curve[e] - want) > tol]
    if held:
        errors.append(f'lr at epochs {held} is {[float(f"{curve[e]:.3g}") for e in held]}, '
                      f'expected {want:.4g} from epoch {begin} to the end')
    return errors


@pytest.mark.parametrize('rel', CONFIGS)
def test_schedule_matches_the_paper(rel):
    cfg = load(rel)
    name = schedule_of(rel)
    errors = check_schedule(cfg, SCHEDULES[name])
    assert not errors, f'{rel} ({name}): ' + '; '.join(errors)


def test_check_catches_a_milestone_offset():
    """The AA bug: MultiStepLR(begin=5) counts its milestones from epoch 5."""
    cfg = copy.deepcopy(load('aa/resnet50_8xb32-aa-100e_in1k.py'))
    cfg.param_scheduler[1] = dict(type='MultiStepLR', by_epoch=True, begin=5,
                                  milestones=[30, 60, 80, 90], gamma=0.1)
    errors = check_schedule(cfg, SCHEDULES['AA ImageNet'])
    assert any('drops at epochs (35, 65, 85, 95)' in e for e in errors), errors


def test_check_catches_a_multiplied_cooldown():
    """The EAMLP bug: ConstantLR(factor=0.01) after the cosine multiplies its 1e-5 again."""
    cfg = copy.deepcopy(load('external_attention/eamlp-7_8xb64_in1k-384px.py'))
    cfg.param_scheduler.append(dict(type='ConstantLR', factor=0.01, by_epoch=True, begin=300,
                                    end=310))
    errors = check_schedule(cfg, SCHEDULES['EAMLP ImageNet'])
    assert any('is [1e-07' in e for e in errors), errors
