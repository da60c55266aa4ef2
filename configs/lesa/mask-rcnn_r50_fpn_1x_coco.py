# LESA paper, Table 3/4 row "R50 Conv. 12": Mask R-CNN R50-FPN, 1x (12 epochs, lr x0.1 after
# epochs 8 and 11), images at 1024 (the paper's default size), 8 GPUs x 1 image, lr 0.01 (the
# official LESA_detection repo). Every Mask R-CNN row of the LESA tables inherits this file.
#
# Resolution: the official code warps every image to a fixed 1024x1024 square (its attention
# only runs on one size). mmattn's LESA runs on any size, so the default here keeps the aspect
# ratio inside 1024x1024 (padded to a multiple of 32); the `*_fixed-1024.py` configs reproduce
# the official warp exactly (configs/_base_/datasets/coco_lesa.py).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmattn_imports.py',
          '../_base_/datasets/coco_lesa.py']
train_dataloader = dict(_base_.lesa_1024.mask.train, batch_size=1, num_workers=2)
val_dataloader = test_dataloader = {{_base_.lesa_1024.mask.test}}
# mmdet's lr for 16 images (0.02) scaled to 8, as the official repo
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(enable=False, base_batch_size=8)
