# LESA paper, Table 6 row "Static LESA" (20.43M, paper): unary + binary added, no fusion gate.
_base_ = ['./lesa-r50_4xb32-cos-90e_in1k.py']
lesa = dict(type='LESA', num_heads=8, fusion='static', pe_type='classification', max_size=14)
model = dict(backbone=dict(stage_ops=(None, None, lesa, lesa)))
