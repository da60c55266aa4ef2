"""Hooks and Runner checks (:mod:`.hooks`, :mod:`.runner_checks`)."""
from .hooks import AtomicCheckpointHook, DataCheckHook
from .runner_checks import install as install_runner_checks

__all__ = ['AtomicCheckpointHook', 'DataCheckHook', 'install_runner_checks']
