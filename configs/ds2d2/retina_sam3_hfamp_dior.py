# Stage 2 of DS2D2 with the SAM3 teacher, the high-frequency amplifier: the fine-tuned SAM3
# RetinaNet's head trained on its own high-frequency maps (Haar LH+HL+HH of each FPN level,
# upsampled), with the SAM3 backbone (trunk, spectral adapter, pyramid) and the FPN frozen.
#   python tools/train.py configs/ds2d2/retina_sam3_hfamp_dior.py
# needs the SAM3 stage's checkpoint (configs/sam3/retina_sam3_dior.py, work_dirs/retina_sam3_dior/)
# and SAM3's sam3.pt at model.detector.backbone.checkpoint (read when the backbone is built; the
# stage's checkpoint then replaces every weight).
#
# The detector is the plain RetinaNet inside the SAM3 stage's TrunkSelfDistiller (its flat form:
# detector_type + the RetinaNet's own keys), rebuilt here from those keys: self-distillation has
# no role once the trunk is frozen, and the SAM3 stage's checkpoint holds the plain RetinaNet's
# keys, so it loads into this detector as it is.
_base_ = ['../sam3/retina_sam3_dior.py']
teacher_ckpt = 'work_dirs/retina_sam3_dior/epoch_24.pth'
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
    teacher_ckpt=teacher_ckpt,
    teacher_config='{{ fileDirname }}/../sam3/retina_sam3_dior.py',
    decomposer='haar')
# The SAM3 stage's unfreezing stages refer to its trunk; here backbone and neck stay frozen.
custom_hooks = []
find_unused_parameters = False
# Only the head trains (starting from the teacher's): the SAM3 stage's AdamW and autocast
# (fp16, never .half(): the frozen trunk's RoPE tables stay complex; not bf16: mmcv's CUDA sigmoid
# focal loss of the RetinaNet head has no bfloat16 kernel), without layer decay or accumulation;
# 12 epochs as for the R101 teacher's amplifier (configs/ds2d2/retina_r101_hfamp_dior.py), the
# SAM3 schedule's warm-up and cosine decay (configs/_base_/schedules/sam3_finetune.py).
max_epochs = 12
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    dtype={{_base_.optim_wrapper.dtype}},
    loss_scale={{_base_.optim_wrapper.loss_scale}},
    optimizer={{_base_.optim_wrapper.optimizer}},
    clip_grad={{_base_.optim_wrapper.clip_grad}})
train_cfg = dict(max_epochs=max_epochs)
