# COCO test-dev2017 (mmdet's convention, its coco_instance.py comment): the 20,288 images of
# test2017 listed in image_info_test-dev2017.json, no annotations, so the evaluator only writes
# the results JSON (format_only) for the evaluation server
# (https://competitions.codalab.org/competitions/20794: zip `<outfile_prefix>.bbox.json` and
# `.segm.json`, renamed detections_test-dev2017_<name>_results.json). A config picks them with
#     test_dataloader = {{_base_.coco_test_dev.dataloader}}
#     test_evaluator = dict(_base_.coco_test_dev.evaluator,
#                           outfile_prefix='./work_dirs/NAME/test-dev')
coco_test_dev = dict(
    dataloader=dict(dataset=dict(ann_file='annotations/image_info_test-dev2017.json',
                                 data_prefix=dict(img='test2017/'), test_mode=True)),
    evaluator=dict(format_only=True,
                   ann_file='data/coco/annotations/image_info_test-dev2017.json'))
