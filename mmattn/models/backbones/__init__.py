from .attn_resnet import AttnResNet, AttnResNeSt, AttnResNeXt
from .eamlp import EAMLP, eamlp_7

__all__ = ['AttnResNet', 'AttnResNeXt', 'AttnResNeSt', 'EAMLP', 'eamlp_7']
