# LESA-R50 with the deformable unary term (LESA paper, Table 3/4 "LESA 20" rows): the grouped 3x3
# of every LESA unary term becomes DCNv1 (groups 8, deform_groups 1, zero-initialised offsets,
# which start fresh from the ImageNet checkpoint). Used on top of the Dconv baseline, so stage 2's
# convs and layer3[0]'s strided conv are deformable too.
_base_ = ['./lesa-r50.py']
backbone = dict(
    stage_ops=tuple(op and dict(op, unary='dcn') for op in _base_.backbone.stage_ops),
    allow_uninitialised=_base_.backbone.allow_uninitialised + ('*.conv_offset.*', ))
