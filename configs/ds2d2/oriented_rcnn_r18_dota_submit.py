# DOTA Task1 submission of an Oriented R-CNN R18 (baseline, or the distilled student exported by
# tools/export_student.py): the test split's patches (images only, from
#   python tools/data/split_dota.py --src data/DOTA/test --out data/DOTA/split_1024/test)
# are predicted, merged back into whole images (rotated NMS across patches) and written as
# Task1_<class>.txt lines "image_id score x1 y1 x2 y2 x3 y3 x4 y4", zipped for the evaluation
# server. The output folder must not exist yet (nothing already written is overwritten).
#   python tools/export_student.py work_dirs/oriented_rcnn_r101_r18_dota/epoch_12.pth student.pth
#   python tools/test.py configs/ds2d2/oriented_rcnn_r18_dota_submit.py student.pth
_base_ = ['./oriented_rcnn_r18_dota.py']
test_dataloader = dict(
    dataset=dict(ann_file='', data_prefix=dict(img_path='test/images/'),
                 pipeline={{_base_.test_pipeline}}))
test_evaluator = dict(_delete_=True, type='DOTAWholeImageMetric', format_only=True,
                      outfile_prefix='work_dirs/oriented_rcnn_r18_dota_submit/Task1')
