"""mmattn's checks in every mmengine Runner of a process that imported mmattn.

``tools/train.py`` and ``tools/test.py`` are not the only way in: ``mim train/test``, mmdet's own
``tools/train.py`` and any script that builds a Runner from a config with
``custom_imports=dict(imports=['mmattn'])`` get, through :func:`install` (called when mmattn is
imported):

- ``train()``: a missing ``data_root``/``ann_file`` fails before any data set is built, naming the
  config key (:func:`mmattn.apis.runner.check_data_roots`), instead of a traceback from inside
  the data set;
- ``test()``/``val()`` with ``load_from``: the checkpoint is compared with the model first and a
  checkpoint that does not fit stops with the message of ``tools/test.py``
  (:func:`mmattn.apis.runner.check_checkpoint_fits`; ``allow_partial_checkpoint=True`` in the
  config evaluates anyway);
- hooks: the config's ``CheckpointHook`` becomes :class:`~mmattn.engine.hooks.AtomicCheckpointHook`
  (same arguments, never a lost checkpoint) and :class:`~mmattn.engine.hooks.DataCheckHook`
  checks every file of the data set before the first iteration, unless the config lists it.

``MMATTN_RUNNER_CHECKS=0`` in the environment leaves the Runner untouched.
"""
import functools
import os

__all__ = ['install']

_DATA_CHECK = 'DataCheckHook'


def _type_name(hook):
    if isinstance(hook, dict):
        t = hook.get('type')
        return t if isinstance(t, str) else getattr(t, '__name__', None)
    return type(hook).__name__


def _with_mmattn_hooks(default_hooks, custom_hooks):
    default_hooks = dict(default_hooks or {})
    ckpt = default_hooks.get('checkpoint')
    if isinstance(ckpt, dict) and _type_name(ckpt) in ('CheckpointHook', 'mmengine.CheckpointHook'):
        default_hooks['checkpoint'] = dict(ckpt, type='AtomicCheckpointHook')
    custom_hooks = list(custom_hooks or [])
    if not any(_type_name(h) == _DATA_CHECK for h in custom_hooks):
        custom_hooks.append(dict(type=_DATA_CHECK, splits=('train', 'val', 'test')))
    return default_hooks, custom_hooks


def _check_loaded_checkpoint(runner):
    from mmattn.apis.runner import check_checkpoint_fits
    filename = runner._load_from
    if not filename or runner._resume:
        return
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    if getattr(model, '_mmattn_checked_checkpoint', None) == filename:
        return  # tools/test.py checked it already
    check_checkpoint_fits(runner.model, filename,
                          allow_partial=bool(runner.cfg.get('allow_partial_checkpoint', False)))


def install() -> bool:
    """Wraps ``Runner.register_hooks``, ``train``, ``val`` and ``test`` once."""
    from mmengine.runner import Runner
    if os.environ.get('MMATTN_RUNNER_CHECKS', '1') == '0':
        return False
    if getattr(Runner, '_mmattn_checks', False):
        return True
    from mmattn.apis.runner import check_data_roots

    register_hooks, train, val, test = Runner.register_hooks, Runner.train, Runner.val, Runner.test

    @functools.wraps(register_hooks)
    def _register_hooks(self, default_hooks=None, custom_hooks=None):
        return register_hooks(self, *_with_mmattn_hooks(default_hooks, custom_hooks))

    @functools.wraps(train)
    def _train(self):
        splits = ['train_dataloader'] + (['val_dataloader'] if self.cfg.get('val_cfg') else [])
        check_data_roots(self.cfg, splits)
        return train(self)

    @functools.wraps(val)
    def _val(self):
        check_data_roots(self.cfg, ['val_dataloader'])
        _check_loaded_checkpoint(self)
        return val(self)

    @functools.wraps(test)
    def _test(self):
        check_data_roots(self.cfg, ['test_dataloader'])
        _check_loaded_checkpoint(self)
        return test(self)

    Runner.register_hooks, Runner.train = _register_hooks, _train
    Runner.val, Runner.test = _val, _test
    Runner._mmattn_checks = True
    return True
