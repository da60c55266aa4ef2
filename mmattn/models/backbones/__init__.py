from .attn_resnet import AttnResNet, AttnResNeSt, AttnResNeXt
from .eamlp import EAMLP, eamlp_7
from .mrla_resnet import MRLABottleneck, MRLAResNet

__all__ = ['AttnResNet', 'AttnResNeXt', 'AttnResNeSt', 'EAMLP', 'eamlp_7', 'MRLABottleneck', 'MRLAResNet']
