# LESA paper, Table 2/6 row "R50 SA" (18.1M, paper): relative-position self-attention only (the
# binary term; no unary term, no fusion) in LESA's places.
# Its last checkpoint, saved as checkpoints/sa-r50_in1k_mmattn.pth, is what the detection configs
# load.
_base_ = ['./lesa-r50_4xb32-cos-90e_in1k.py']
sa = dict(type='LESA', num_heads=8, fusion='none', pe_type='classification', max_size=14)
model = dict(backbone=dict(stage_ops=(None, None, sa, sa)))
