"""Moved to :mod:`mmattn.utils.checkpoint` (one checkpoint reader and key comparison for the
backbones, the converters and the tools); this name stays so that existing imports keep working.
"""
from mmattn.utils.checkpoint import (  # noqa: F401
    ATTENTION_MODULE_NAMES, OPERATORS, PretrainedLoadCheck, UninitialisedWeightsError,
    attention_state_keys, check_allow_uninitialised, compare_with_checkpoint, format_report,
    refusal, suggest_patterns)

__all__ = ['PretrainedLoadCheck', 'UninitialisedWeightsError', 'attention_state_keys',
           'compare_with_checkpoint', 'check_allow_uninitialised', 'suggest_patterns']
