# One file per paper's operator (base.py: the contract every operator follows);
# attention/ (package) and position.py hold the shared exact attention.
from .aa_conv import AAConv2d
from .base import (AttnModule, AttnOperator, is_operator, list_operators,
                   register_operator)
from .external_attention import (ExternalAttention, ExternalAttentionBlock,
                                 MultiHeadExternalAttention, double_normalization)
from .la_layer import LALayer
from .lesa import LESA
from .mrla import MRLABase, MRLALight, MRLAProjection, eca_kernel_size

__all__ = [
    'AttnModule', 'AttnOperator', 'is_operator', 'list_operators', 'register_operator',
    'AAConv2d', 'LESA', 'ExternalAttention', 'ExternalAttentionBlock',
    'MultiHeadExternalAttention', 'double_normalization', 'LALayer', 'MRLABase', 'MRLALight',
    'MRLAProjection', 'eca_kernel_size'
]
