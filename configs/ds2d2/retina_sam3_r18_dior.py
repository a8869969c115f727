# Stage 3, DS2D2 with a SAM3 teacher: RetinaNet R18 student distilled from the fine-tuned SAM3
# RetinaNet on DIOR, 24 epochs.
#   python tools/train.py configs/ds2d2/retina_sam3_r18_dior.py
# Recipe: configs/sam3/retina_sam3_dior.py (teacher) -> configs/ds2d2/retina_sam3_hfamp_dior.py
# (high-frequency amplifier) -> this config. Needs both checkpoints below, and SAM3's sam3.pt at
# the path the SAM3 config names (read when the teacher's backbone is built, then replaced by the
# teacher checkpoint).
#
# Teacher and student differ in:
# - FPN strides: the SAM3 pyramid gives 7, 14, 28, 56, 112 (patch 14), the R18 FPN 8 ... 128. The
#   student's adapted levels are resized to the teacher's grids for the explicit stream and the
#   amplifiers (losses/explicit.py align_to); the single-stage strategy then finds that the
#   student's anchors do not line up with the amplifier head's and assigns the ground truth with
#   the amplifier head's own anchors (strategies.py SingleStageStrategy.label_weights).
# - FPN channels: set by the two configs (256 both by default); the explicit stream's 1x1 adapter
#   maps student to teacher channels whatever they are.
# - Input normalisation: SAM3 scales RGB to [-1, 1], the student uses ImageNet mean / std; the
#   distiller maps the student's inputs to the teacher's normalisation (both convert BGR to RGB).
# - Input size: the student's pipeline (800 px, the R18 baseline's, for a fair comparison) feeds
#   both; the SAM3 trunk pads it to its 1008 px and crops the map back, so the teacher sees DIOR
#   at its native scale while it was fine-tuned on images upscaled to 1008 px (objects 0.79x the
#   size it trained on). To match, set the student's Resize to 1008 in both pipelines (and train
#   the R18 baseline likewise).
#
# The teacher config is the SAM3 stage's TrunkSelfDistiller itself: it exposes the wrapped
# RetinaNet's backbone / neck / bbox_head / data_preprocessor / extract_feat, so the distiller and
# its strategy find the head and features, and its checkpoint loads as it is. As a teacher it
# never builds the original trunk of its self-distillation (that happens at its first loss call).
_base_ = ['./retina_r18_dior.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/../sam3/retina_sam3_dior.py',
    teacher_ckpt='work_dirs/retina_sam3_dior/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/retina_sam3_hfamp_dior.py',
    amplifier_ckpt='work_dirs/retina_sam3_hfamp_dior/epoch_12.pth',
    distill_cfg=dict(
        # the published RetinaNet / DIOR weights (tuned for a ResNet teacher's FPN features)
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, shared_adapter=True,
                      decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='GIoULoss', loss_weight=1.0)))
# the distilled student's lr, 0.005 as in retina_r101_r18_dior.py (the baseline's is the authors'
# 0.02, retina_r18_dior.py)
optim_wrapper = dict(optimizer=dict(lr=0.005))
