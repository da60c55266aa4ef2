# One file per paper's operator; attention.py / position.py hold the shared exact attention.
from .la_layer import LALayer

__all__ = ['LALayer']
