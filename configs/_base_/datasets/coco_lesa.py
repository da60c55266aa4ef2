# LESA's COCO inputs (paper Sec. 4.2: "the images are resized to 1024x1024 and 1280x1280";
# Mask R-CNN single scale, HTC multi-scale), one dataloader pair per annotation kind (`bbox`:
# boxes, `mask`: + masks, `htc`: + HTC's semantic maps); the batch size stays the config's.
# A config picks one with e.g.
#     train_dataloader = {{_base_.lesa_1024.mask.train}}
#     val_dataloader = test_dataloader = {{_base_.lesa_1024.mask.test}}
# - lesa_1024: fitted into 1024x1024 keeping the aspect ratio (padded to a multiple of 32), the
#   default: mmattn's LESA runs on any size.
# - lesa_fixed_1024 / lesa_fixed_1280: warped to the square (keep_ratio=False), the official
#   code's only setting (its attention runs on one size).
# - lesa_htc_ms_1024 / lesa_htc_ms_1280: HTC's multi-scale training: with probability 0.5 a scale
#   uniform in [0.5, 1] x S, else in [1, 2] x S (the image fitted into that square), tested at
#   S. The paper states the ranges for S = 1024 (512-1024, 1024-2048); the ^h rows (S = 1280)
#   train and test at 1280 with the same ratios (official higher-resolution configs).


def _loaders(train_resize, test_resize):
    kinds = dict(bbox=dict(with_bbox=True), mask=dict(with_bbox=True, with_mask=True),
                 htc=dict(with_bbox=True, with_mask=True, with_seg=True))
    out = {}
    for kind, ann in kinds.items():
        test_ann = dict(ann, with_seg=False)
        train = [dict(type='LoadImageFromFile', backend_args=None),
                 dict(type='LoadAnnotations', **ann), train_resize,
                 dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
        test = [dict(type='LoadImageFromFile', backend_args=None), test_resize,
                dict(type='LoadAnnotations', **test_ann),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]
        out[kind] = dict(
            train=dict(dataset=dict(pipeline=train)),
            test=dict(dataset=dict(pipeline=test)))
    return out


def _multi_scale(size):
    return dict(type='RandomChoice', prob=[0.5, 0.5], transforms=[
        [dict(type='RandomResize', scale=(size, size), ratio_range=r, keep_ratio=True)]
        for r in ((0.5, 1.0), (1.0, 2.0))])


lesa_1024 = _loaders(dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
                     dict(type='Resize', scale=(1024, 1024), keep_ratio=True))
lesa_fixed_1024 = _loaders(dict(type='Resize', scale=(1024, 1024), keep_ratio=False),
                           dict(type='Resize', scale=(1024, 1024), keep_ratio=False))
lesa_fixed_1280 = _loaders(dict(type='Resize', scale=(1280, 1280), keep_ratio=False),
                           dict(type='Resize', scale=(1280, 1280), keep_ratio=False))
lesa_htc_ms_1024 = _loaders(_multi_scale(1024),
                            dict(type='Resize', scale=(1024, 1024), keep_ratio=True))
lesa_htc_ms_1280 = _loaders(_multi_scale(1280),
                            dict(type='Resize', scale=(1280, 1280), keep_ratio=True))
