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
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0, norm_type=2))
