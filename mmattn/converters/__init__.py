# Official checkpoints -> mmattn keys, one small pure function per paper.
from .eanet import convert_eanet
from .lesa import convert_lesa
from .mrla import convert_mrla

__all__ = ['convert_eanet', 'convert_lesa', 'convert_mrla']
