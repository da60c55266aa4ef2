# Official checkpoints -> mmattn keys, one small pure function per paper.
from .mrla import convert_mrla

__all__ = ['convert_mrla']
