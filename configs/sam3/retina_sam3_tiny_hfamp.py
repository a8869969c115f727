# The SAM3 high-frequency amplifier stage (configs/ds2d2/retina_sam3_hfamp_dior.py) with the tiny
# random-init trunk of retina_sam3_tiny.py, for tests and CPU smoke runs.
_base_ = ['./retina_sam3_tiny.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector=dict(
        type={{_base_.model.detector_type}},
        data_preprocessor={{_base_.model.data_preprocessor}},
        backbone={{_base_.model.backbone}},
        neck={{_base_.model.neck}},
        bbox_head={{_base_.model.bbox_head}},
        train_cfg={{_base_.model.train_cfg}},
        test_cfg={{_base_.model.test_cfg}}),
    teacher_ckpt=None,
    teacher_config='{{ fileDirname }}/retina_sam3_tiny.py',
    decomposer='haar')
custom_hooks = []
find_unused_parameters = False
# only the head trains: the tiny recipe's optimizer, without layer decay
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    clip_grad={{_base_.optim_wrapper.clip_grad}})
