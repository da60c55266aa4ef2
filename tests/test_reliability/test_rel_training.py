"""Training runs that must agree bit for bit or to float tolerance, on the CPU:

- determinism: two runs with the same seed give identical weights;
- resume: a run SIGKILLed mid-epoch and resumed with --resume ends with the weights of an
  uninterrupted run;
- distributed: tools/dist_train.sh with 2 gloo processes x batch 1 follows the loss curve and
  ends with the weights of 1 process x batch 2; tools/dist_test.sh with 2 processes gives the
  predictions and metrics of 1 process.

Toy scale: the real ImageNet configs through make_toy_cfg (32 px images, 6 training images,
batch 2: 3 iterations per epoch), with the backbone narrowed to base width 16, no validation
inside training.
"""
import json
import os
import os.path as osp
import pickle
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, run_py

pytestmark = pytest.mark.slow
HERE = osp.dirname(osp.abspath(__file__))
AA_CONFIG = osp.join(REPO, 'configs/aa/aa-r50_8xb32-100e_in1k.py')
LESA_CONFIG = osp.join(REPO, 'configs/lesa/lesa-r50_4xb32-cos-90e_in1k.py')
TRAIN = osp.join(REPO, 'tools/train.py')
TEST = osp.join(REPO, 'tools/test.py')


def env(**extra):
    e = dict(os.environ)
    e['PYTHONPATH'] = os.pathsep.join([REPO, HERE, e.get('PYTHONPATH', '')])
    e['PYTHON'] = sys.executable
    e.update(extra)
    return e


def toy_config(path, toy_root, src, max_iters, batch_size=2, ckpt_interval=1, fixed=False,
               loss_file=None, dump=None):
    """``src`` at toy scale, seed 0, a checkpoint every ``ckpt_interval`` iterations.

    ``fixed``: the batch-independent setting of the distributed comparison: the test pipeline
    (resize + centre crop) for training, so an image's augmentation does not depend on which
    process draws it, and ``norm_eval=True`` (every BatchNorm of the backbone, the operators'
    own included, uses its running statistics, as in the detection configs), so the forward of
    an image does not depend on the other images of its batch.
    """
    from mmengine.config import Config

    import mmattn  # noqa: F401
    from mmattn.testing import make_toy_cfg
    cfg = make_toy_cfg(Config.fromfile(src), str(toy_root / 'imagenet'), max_iters=max_iters,
                       batch_size=batch_size, val=False)
    cfg.randomness = dict(seed=0)
    cfg.custom_imports = dict(imports=['mmattn', '_rel_hooks'], allow_failed_imports=False)
    hooks = [dict(type='RelStallHook')]
    if loss_file:
        hooks.append(dict(type='RelLossRecorderHook', out_file=str(loss_file)))
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + hooks
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=ckpt_interval,
                                        by_epoch=False, max_keep_ckpts=-1)
    cfg.log_processor = dict(by_epoch=False)
    # narrow (base width 16): the CPU time of these runs, not the architecture, is the limit
    cfg.model.backbone.update(base_channels=16, stem_channels=16)
    cfg.model.head.in_channels = 512
    if fixed:
        cfg.train_dataloader.dataset.pipeline = cfg.test_dataloader.dataset.pipeline
        cfg.train_dataloader.sampler.seed = 0
        cfg.model.backbone.norm_eval = True
    if dump:
        cfg.test_evaluator = [dict(type='Accuracy', topk=(1, 2)),
                              dict(type='DumpResults', out_file_path=str(dump))]
    cfg.dump(str(path))
    return str(path)


def state(path):
    ckpt = torch.load(str(path), map_location='cpu')  # mmattn's compat allow-list
    return ckpt['state_dict'], ckpt['optimizer']['state']


def assert_identical(a, b):
    (sa, oa), (sb, ob) = state(a), state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f'{k} differs between {a} and {b}'
    assert oa.keys() == ob.keys()
    for i in oa:
        for name in oa[i]:
            assert torch.equal(oa[i][name], ob[i][name]), f'optimizer state {i}.{name} differs'


@pytest.fixture(scope='module')
def runs(tmp_path_factory, toy_root):
    """AA-ResNet-50 (relative attention in stages 2-4, narrow): an uninterrupted run of 4
    iterations, and the same config run again and SIGKILLed at the start of iteration 3
    (iter_2.pth written, iteration 3's batch drawn; an epoch is iterations 1-3, so mid-epoch)."""
    tmp = tmp_path_factory.mktemp('aa_runs')
    cfg = toy_config(tmp / 'aa4.py', toy_root, AA_CONFIG, max_iters=4)
    run_py([TRAIN, cfg, '--work-dir', str(tmp / 'reference')], env=env())

    work, marker = tmp / 'killed', tmp / 'stalled'
    log = open(tmp / 'killed.log', 'w')
    proc = subprocess.Popen([sys.executable, TRAIN, cfg, '--work-dir', str(work)], cwd=REPO,
                            env=env(MMATTN_TEST_STALL_AT_ITER='2',
                                    MMATTN_TEST_STALL_MARKER=str(marker)),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while not marker.exists():
            assert proc.poll() is None, open(tmp / 'killed.log').read()[-4000:]
            assert time.time() < deadline, 'the run never reached iteration 3'
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        returncode = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    return dict(cfg=cfg, reference=tmp / 'reference', killed=work, returncode=returncode)


def test_same_seed_same_weights(runs):
    """Two runs with the same seed (the reference and the run later killed) are bit-identical
    after each of their 2 common iterations: weights, BN statistics and momentum buffers (the
    generated data is bit-identical by seed too, tests/test_datasets)."""
    for i in (1, 2):
        assert_identical(runs['killed'] / f'iter_{i}.pth', runs['reference'] / f'iter_{i}.pth')


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(runs):
    work = runs['killed']
    assert runs['returncode'] == -signal.SIGKILL
    assert (work / 'iter_2.pth').exists() and not (work / 'iter_3.pth').exists()
    proc = run_py([TRAIN, runs['cfg'], '--work-dir', str(work), '--resume'], env=env())
    out = proc.stdout + proc.stderr
    assert 'Advance dataloader 2 steps' in out
    assert 'Iter(train) [3/4]' in out and 'Iter(train) [2/4]' not in out
    # bit-identical to the uninterrupted run, across the epoch boundary (reshuffle) at iter 4
    for i in (3, 4):
        assert_identical(work / f'iter_{i}.pth', runs['reference'] / f'iter_{i}.pth')


def test_sigkill_during_the_checkpoint_write_keeps_a_checkpoint(runs, toy_root, tmp_path):
    """max_keep_ckpts=1 (small disks) and a SIGKILL while iter_3.pth is half written: stock
    mmengine has deleted iter_2.pth already and leaves a truncated iter_3.pth with
    last_checkpoint naming it. The tools' runner saves through AtomicCheckpointHook (the
    config names the stock CheckpointHook): iter_2.pth survives, resume ends bit-identical."""
    from mmengine.config import Config
    path = toy_config(tmp_path / 'keep1.py', toy_root, AA_CONFIG, max_iters=4)
    cfg = Config.fromfile(path)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.custom_imports.imports.append('_rel_kill')
    cfg.custom_hooks.append(dict(type='RelKillDuringSaveHook'))
    cfg.dump(path)
    work = tmp_path / 'work'
    proc = subprocess.run([sys.executable, TRAIN, path, '--work-dir', str(work)], cwd=REPO,
                          env=env(MMATTN_TEST_KILL_AT_SAVE='3'), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-4000:]
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_2.pth', 'iter_3.pth.tmp']
    assert open(work / 'last_checkpoint').read().endswith('iter_2.pth')
    run_py([TRAIN, path, '--work-dir', str(work), '--resume'], env=env())
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_4.pth']  # .tmp cleaned up
    assert_identical(work / 'iter_4.pth', runs['reference'] / 'iter_4.pth')


def _losses(path):
    return [json.loads(line)['loss'] for line in open(path)]


def test_two_processes_match_one_process(tmp_path, toy_root):
    """2 gloo processes x batch 1 against 1 process x batch 2, LESA-ResNet-50, 3 iterations
    (one epoch), then dist_test.sh (2 processes) against test.py on its checkpoint.

    Equal only where nothing depends on the batch composition: norm_eval=True (plain training
    BatchNorm normalises by the statistics of each process's own batch, so 2 x 1 and 1 x 2 are
    different models; SyncBN would be needed) and a deterministic pipeline (a random crop's
    draw depends on which process loads the image). Tolerance: DDP averages the two
    processes' gradients after the backward, the single process sums the batch inside it, so
    the float sums run in another order; the difference is rounding (~1e-7 relative per step),
    checked at rtol 1e-4, atol 1e-6.
    """
    one = toy_config(tmp_path / 'one.py', toy_root, LESA_CONFIG, max_iters=3, batch_size=2,
                     ckpt_interval=3, fixed=True, loss_file=tmp_path / 'loss1.jsonl')
    two = toy_config(tmp_path / 'two.py', toy_root, LESA_CONFIG, max_iters=3, batch_size=1,
                     ckpt_interval=3, fixed=True, loss_file=tmp_path / 'loss2.jsonl')
    run_py([TRAIN, one, '--work-dir', str(tmp_path / 'w1')], env=env())
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/dist_train.sh'), two, '2',
                           '--work-dir', str(tmp_path / 'w2')], cwd=REPO,
                          env=env(PORT='29537'), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert 'GPU number: 2' in proc.stdout + proc.stderr  # mmengine's world size line

    l1, l2 = _losses(tmp_path / 'loss1.jsonl'), _losses(tmp_path / 'loss2.jsonl')
    assert len(l1) == len(l2) == 3
    assert torch.allclose(torch.tensor(l1), torch.tensor(l2), rtol=1e-5, atol=1e-7), (l1, l2)
    s1, _ = state(tmp_path / 'w1' / 'iter_3.pth')
    s2, _ = state(tmp_path / 'w2' / 'iter_3.pth')
    for k in s1:
        assert torch.allclose(s1[k].double(), s2[k].double(), rtol=1e-4, atol=1e-6), k
    assert l1[0] != l1[-1]  # not vacuous: the weights moved between the iterations

    # dist_test.sh (2 processes; 3 validation images, so the sampler pads one) vs test.py
    ckpt = str(tmp_path / 'w1' / 'iter_3.pth')
    t1 = toy_config(tmp_path / 't1.py', toy_root, LESA_CONFIG, max_iters=3, fixed=True,
                    dump=tmp_path / 'pred1.pkl')
    t2 = toy_config(tmp_path / 't2.py', toy_root, LESA_CONFIG, max_iters=3, fixed=True,
                    dump=tmp_path / 'pred2.pkl')
    p1 = run_py([TEST, t1, ckpt, '--work-dir', str(tmp_path / 'tw1')], env=env())
    p2 = subprocess.run(['bash', osp.join(REPO, 'tools/dist_test.sh'), t2, ckpt, '2',
                         '--work-dir', str(tmp_path / 'tw2')], cwd=REPO, env=env(PORT='29538'),
                        capture_output=True, text=True, timeout=900)
    assert p2.returncode == 0, (p2.stdout + p2.stderr)[-6000:]
    m1 = re.findall(r'accuracy/top(\d): ([\d.]+)', p1.stdout + p1.stderr)
    m2 = re.findall(r'accuracy/top(\d): ([\d.]+)', p2.stdout + p2.stderr)
    assert m1 and m1 == m2, (m1, m2)
    with open(tmp_path / 'pred1.pkl', 'rb') as f:
        pred1 = pickle.load(f)
    with open(tmp_path / 'pred2.pkl', 'rb') as f:
        pred2 = pickle.load(f)
    assert len(pred1) == len(pred2) == 3  # the padded duplicate is dropped
    for a, b in zip(pred1, pred2):
        assert a['img_path'] == b['img_path']
        assert torch.allclose(a['pred_score'], b['pred_score'], rtol=1e-5, atol=1e-7)
