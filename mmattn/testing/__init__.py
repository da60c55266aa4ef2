from .toy_cfg import TOY_SIZES, make_toy_cfg

__all__ = ['TOY_SIZES', 'make_toy_cfg']
