"""Hooks the reliability tests put into their toy configs (custom_imports=['_rel_hooks'] with
this folder on PYTHONPATH). Neither changes what a run computes."""
import json
import os
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RelStallHook(Hook):
    """With ``MMATTN_TEST_STALL_AT_ITER=k`` in the environment: at the start of iteration k + 1
    (``runner.iter == k``, its data batch already drawn, iteration k's checkpoint written),
    writes ``MMATTN_TEST_STALL_MARKER`` and sleeps, so the test can SIGKILL the run mid-epoch at
    a known point. Without the variable it does nothing."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        at = os.environ.get('MMATTN_TEST_STALL_AT_ITER')
        if at is not None and runner.iter == int(at):
            with open(os.environ['MMATTN_TEST_STALL_MARKER'], 'w') as f:
                f.write(str(runner.iter))
            time.sleep(900)


@HOOKS.register_module()
class RelLossRecorderHook(Hook):
    """Appends ``{"iter": i, "loss": mean over processes}`` per iteration to ``out_file``."""

    def __init__(self, out_file):
        self.out_file = out_file

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        import torch
        import torch.distributed as dist
        loss = outputs['loss']
        loss = (loss.detach().clone() if torch.is_tensor(loss) else torch.tensor(loss)).double()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(loss)
            loss /= dist.get_world_size()
            if dist.get_rank() != 0:
                return
        with open(self.out_file, 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, loss=loss.item())) + '\n')
