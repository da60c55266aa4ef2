# One file per paper's operator; attention.py / position.py hold the shared exact attention.
from .external_attention import (ExternalAttention, ExternalAttentionBlock,
                                 MultiHeadExternalAttention, double_normalization)
from .la_layer import LALayer
from .mrla import MRLABase, MRLALight, MRLAProjection, eca_kernel_size

__all__ = [
    'ExternalAttention', 'ExternalAttentionBlock', 'MultiHeadExternalAttention',
    'double_normalization', 'LALayer', 'MRLABase', 'MRLALight', 'MRLAProjection',
    'eca_kernel_size'
]
