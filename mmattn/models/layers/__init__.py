# One file per paper's operator; attention.py / position.py hold the shared exact attention.
from .aa_conv import AAConv2d
from .base import AttnOperator, is_operator, list_operators, register_operator
from .external_attention import (ExternalAttention, ExternalAttentionBlock,
                                 MultiHeadExternalAttention, double_normalization)
from .la_layer import LALayer
from .lesa import LESA
from .mrla import MRLABase, MRLALight, MRLAProjection, eca_kernel_size

__all__ = [
    'AttnOperator', 'is_operator', 'list_operators', 'register_operator', 'AAConv2d', 'LESA', 'ExternalAttention', 'ExternalAttentionBlock', 'MultiHeadExternalAttention',
    'double_normalization', 'LALayer', 'MRLABase', 'MRLALight', 'MRLAProjection',
    'eca_kernel_size'
]
