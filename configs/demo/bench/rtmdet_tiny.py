# Comparison benchmark, another detector family (this project's extension): an RTMDet-tiny
# student trained alone on the baseline's data and schedule. It is the reference of the rows that
# distil into RTMDet-tiny (their step time, extra parameters and the config that scores their
# exported student).
_base_ = ['./baseline.py', '../_rtmdet_tiny.py']
bench_row = dict(name='RTMDet-tiny', group='family', order=10, baseline='RTMDet-tiny')
model = dict(
    _delete_=True,
    type='RTMDet',
    data_preprocessor={{_base_.rtmdet_tiny.data_preprocessor}},
    backbone={{_base_.rtmdet_tiny.backbone}},
    neck={{_base_.rtmdet_tiny.neck}},
    bbox_head={{_base_.rtmdet_tiny.bbox_head}},
    train_cfg={{_base_.rtmdet_tiny.train_cfg}},
    test_cfg={{_base_.rtmdet_tiny.test_cfg}})
