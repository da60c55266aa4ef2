# The LA-layer paper's COCO input (Sec. 4.2, after ResNeSt, Zhang et al. 2022): the shorter side
# of every training image sampled from [640, 800] (mmdet's "ms-range", as its ResNeSt configs),
# single-scale (1333, 800) testing (mmdet's stock test pipeline). One training dataloader per
# annotation kind (`bbox`, `mask`, `htc`: + semantic maps); a config picks one with
#     train_dataloader = {{_base_.ms_range.mask}}


def _train(**ann):
    return dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', **ann),
        dict(type='RandomResize', scale=[(1333, 640), (1333, 800)], keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')
    ]))


ms_range = dict(bbox=_train(with_bbox=True), mask=_train(with_bbox=True, with_mask=True),
                htc=_train(with_bbox=True, with_mask=True, with_seg=True))
