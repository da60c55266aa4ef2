# LESA paper, Table 4 row "R50 LESA 20" (COCO test-dev2017): the model of
# mask-rcnn_lesa-dcn-r50_fpn_20e_coco.py tested on test-dev ("the same testing pipeline for
# val2017 and test-dev2017"), writing the results JSON for the evaluation server
# (configs/_base_/datasets/coco_test-dev.py):
#   tools/test.py configs/lesa/mask-rcnn_lesa-dcn-r50_fpn_20e_coco_test-dev.py CHECKPOINT
_base_ = ['./mask-rcnn_lesa-dcn-r50_fpn_20e_coco.py', '../_base_/datasets/coco_test-dev.py']
test_dataloader = {{_base_.coco_test_dev.dataloader}}
test_evaluator = dict(
    _base_.coco_test_dev.evaluator,
    outfile_prefix='./work_dirs/mask-rcnn_lesa-dcn-r50_fpn_20e_coco_test-dev/results')
