"""A hook that kills its own run in the middle of writing a checkpoint (custom_imports=
['_rel_kill'] with this folder on PYTHONPATH). With ``MMATTN_TEST_KILL_AT_SAVE=k`` the k-th
checkpoint write of the run stops after half of its bytes with SIGKILL, as a preempted or
OOM-killed job would; without the variable it does nothing."""
import os
import signal

from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RelKillDuringSaveHook(Hook):

    def __init__(self):
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint):
        self.saves += 1
        at = os.environ.get('MMATTN_TEST_KILL_AT_SAVE')
        if at is None or self.saves != int(at):
            return

        def put(backend, obj, filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        LocalBackend.put = put
