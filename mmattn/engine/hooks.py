"""Hooks that keep a run's checkpoints and data honest (registered in mmengine's root HOOKS, so
mmdet, mmseg and mmpretrain configs find them by name once ``custom_imports`` names mmattn).

- :class:`AtomicCheckpointHook`: mmengine's ``CheckpointHook`` writes ``iter_N.pth`` in place and,
  with ``max_keep_ckpts``, deletes the oldest checkpoint *before* the new one is written, so a
  kill during the write (a preempted job, an OOM kill) can leave no loadable checkpoint at all:
  a truncated ``iter_N.pth``, the previous one deleted, ``last_checkpoint`` naming the deleted
  file. This subclass writes ``iter_N.pth.tmp``, syncs it and renames it over ``iter_N.pth``
  (atomic on a local file system), points ``last_checkpoint`` at it the same way, and only then
  deletes what ``max_keep_ckpts`` drops. Same arguments and files as ``CheckpointHook``.
- :class:`DataCheckHook`: before the first iteration, every image (and segmentation map) the
  training set names exists (a stat pass; ``decode=True`` also decodes each), with a summary
  and an error listing the first bad files (:mod:`mmattn.utils.data_check`).

Importing mmattn makes every Runner use both (:mod:`mmattn.engine.runner_checks`); a config can
also name them itself::

    custom_imports = dict(imports=['mmattn'], allow_failed_imports=False)
    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                                         max_keep_ckpts=1))
    custom_hooks = [dict(type='DataCheckHook', decode=True)]
"""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

__all__ = ['AtomicCheckpointHook', 'DataCheckHook']

TMP_SUFFIX = '.tmp'


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(tmp: str, final: str) -> None:
    """Renames ``tmp`` over ``final`` after its bytes are on disk (then syncs the folder, so
    the rename survives a power loss too, where the file system allows it)."""
    _fsync(tmp)
    os.replace(tmp, final)
    try:
        _fsync(osp.dirname(osp.abspath(final)))
    except OSError:  # a folder cannot be opened for sync on every OS
        pass


def write_text_atomically(path: str, text: str) -> None:
    with open(path + TMP_SUFFIX, 'w') as f:
        f.write(text)
    replace_atomically(path + TMP_SUFFIX, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that never leaves a run without a loadable checkpoint (module
    docstring). Remote backends (``backend_args``) keep mmengine's behaviour."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            # the partial file of a write that was killed
            for stale in glob.glob(osp.join(self.out_dir, '*' + TMP_SUFFIX)):
                os.remove(stale)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        drop = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                drop.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename + TMP_SUFFIX, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        replace_atomically(self.last_ckpt + TMP_SUFFIX, self.last_ckpt)
        write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in drop:  # only now that the new checkpoint is complete
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Checks the training set's files before the first iteration.

    Args:
        decode (bool): also decode every image (slow: minutes for COCO on a few cores); the
            default stat pass checks that each file exists and is not empty.
        splits (Sequence[str]): which loaders: 'train' (default), 'val', 'test'.
        max_listed (int): how many bad files the error names.
    """

    priority = 'VERY_HIGH'

    def __init__(self, decode=False, splits=('train', ), max_listed=10):
        bad = [s for s in splits if s not in ('train', 'val', 'test')]
        if bad:
            raise ValueError(f"DataCheckHook: splits={splits!r}; accepted 'train', 'val', "
                             "'test'")
        self.decode = bool(decode)
        self.splits = tuple(splits)
        self.max_listed = max_listed
        self.done = set()

    def _check(self, runner, split):
        if split in self.done:
            return
        self.done.add(split)
        from mmattn.utils.data_check import check_dataset
        loader = getattr(runner, f'{split}_dataloader')
        check_dataset(loader.dataset, name=f'{split}_dataloader.dataset', decode=self.decode,
                      max_listed=self.max_listed)

    def before_train(self, runner) -> None:
        if 'train' in self.splits:
            self._check(runner, 'train')

    def before_val(self, runner) -> None:
        if 'val' in self.splits:
            self._check(runner, 'val')

    def before_test(self, runner) -> None:
        if 'test' in self.splits:
            self._check(runner, 'test')
