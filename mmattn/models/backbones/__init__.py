from .attn_resnet import AttnResNet, AttnResNeSt, AttnResNeXt

__all__ = ['AttnResNet', 'AttnResNeXt', 'AttnResNeSt']
