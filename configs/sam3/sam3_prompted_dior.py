# SAM3 that stays SAM3: its full image model, prompted with DIOR's class names, fine-tuned for
# small dense objects while its text / point / box prompting stays SAM3's.
#
#   image (1008 px) -> SAM3 ViT (last 6 of 32 blocks trained) -> spectral adapter (identity at
#   init, 0.53M) -> SAM3's neck, fusion encoder, decoder (frozen) -> SAM3's box / score heads,
#   presence token, segmentation head
#   text: every DIOR class name (natural-language prompts below) -> SAM3's text encoder (frozen)
#
# Each image is asked for every class (20 prompts per image, one forward pass); SAM3's own
# matcher and losses (sam3.train) with the weights of SAM3's fine-tuning recipe; a class absent
# from the image is a negative prompt (trains the presence token).
# Three stages (ProgressiveUnfreezeHook): 1. ViT blocks + adapter, 2. SAM3's head + presence
# token, 3. both. bf16 autocast (AmpOptimWrapper; SAM3 trains in bf16) and gradient accumulation.
#
# Needs SAM3's released checkpoint and CLIP's BPE vocabulary as local files (never downloaded):
#   python tools/train.py configs/sam3/sam3_prompted_dior.py \
#       --cfg-options model.checkpoint=checkpoints/sam3.pt \
#       model.bpe_path=checkpoints/bpe_simple_vocab_16e6.txt.gz
# bpe_path=None takes the copy open_clip_torch ships (the sam3 extra installs it).
# Data: DIOR in COCO format (tools/data), 800 x 800 images resized to SAM3's 1008 px.
_base_ = [
    '../_base_/datasets/dior_sam3.py',  # DIOR, flips both ways (pipelines restated below)
    '../_base_/schedules/sam3_finetune.py',  # AdamW, autocast, accumulation, warm-up + cosine
]

custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)

# ---------------------------------------------------------------- settings worth changing
sam3_checkpoint = 'checkpoints/sam3.pt'  # SAM3's released weights (local file)
bpe_path = 'checkpoints/bpe_simple_vocab_16e6.txt.gz'  # CLIP's vocabulary, next to sam3.pt
arch = 'sam3'
img_size = 1008  # SAM3's input size
num_trainable_blocks = 6  # last N of 32 ViT blocks
max_epochs = 12
stage2_begin, stage3_begin = 4, 8  # epochs (0-based): head alone, then both

# DIOR runs words together; SAM3 reads text (ds2d2_mm.models.detectors.sam3_prompted.vocab.DIOR_PROMPTS)
class_prompts = {
    'baseballfield': 'baseball field', 'basketballcourt': 'basketball court',
    'expressway-service-area': 'expressway service area',
    'expressway-toll-station': 'expressway toll station', 'golffield': 'golf field',
    'groundtrackfield': 'ground track field', 'storagetank': 'storage tank',
    'tenniscourt': 'tennis court', 'trainstation': 'train station',
}  # fmt: skip

# ProgressiveUnfreezeHook prefixes (ds2d2_mm.models.detectors.sam3_prompted.STAGE_PREFIXES)
vit_prefixes = [
    'sam3.backbone.vision_backbone.trunk',
    'sam3.backbone.vision_backbone.spectral_adapter',
]
head_prefixes = [
    'sam3.transformer.decoder.bbox_embed',
    'sam3.transformer.decoder.presence_token',
    'sam3.transformer.decoder.presence_token_head',
    'sam3.transformer.decoder.presence_token_out_norm',
    'sam3.dot_prod_scoring',
    'sam3.segmentation_head',
]
all_prefixes = vit_prefixes + head_prefixes

# ---------------------------------------------------------------- model
model = dict(
    type='Sam3PromptedDetector',
    arch=arch,
    checkpoint=sam3_checkpoint,
    bpe_path=bpe_path,
    img_size=img_size,
    classes={{_base_.dataset_type}},  # DIORDataset: its METAINFO classes, in label order
    class_prompts=class_prompts,
    num_trainable_blocks=num_trainable_blocks,
    train_head=True,
    adapter_cfg=dict(hidden_channels=128),
    with_mask_loss=False,  # DIOR has boxes only
    max_per_img=100,
    # SAM3's normalisation: RGB, mean 0.5 and std 0.5 on [0, 1]
    data_preprocessor=dict(
        type='DetDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True,
        pad_size_divisor=1,
    ),  # fmt: skip
)

# ---------------------------------------------------------------- data
# SAM3 reads S x S images: resized without keeping the aspect ratio (all images share one shape,
# so no aspect-ratio batching)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_sampler=None, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# ---------------------------------------------------------------- schedule
# SAM3's fine-tuning recipe (roboflow_v100_full_ft): AdamW, weight decay 0.1, lr 8e-5 for the
# transformer side and 2.5e-5 for the vision backbone (lr_scale 0.1), gradient clip 0.1, bf16.
optim_wrapper = dict(
    dtype='bfloat16',
    optimizer=dict(lr=8e-5, weight_decay=0.1),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'sam3.backbone.vision_backbone.trunk': dict(lr_mult=2.5e-5 / 8e-5),
            # the new adapter learns at the transformer side's rate, without weight decay on gamma
            'sam3.backbone.vision_backbone.spectral_adapter.gamma': dict(decay_mult=0.0),
        },
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
    ),
)
train_cfg = dict(max_epochs=max_epochs)
custom_hooks = [
    dict(
        type='ProgressiveUnfreezeHook',
        by_epoch=True,
        stages=[
            dict(begin=0, trainable=vit_prefixes),
            dict(begin=stage2_begin, trainable=head_prefixes),
            dict(begin=stage3_begin, trainable=all_prefixes),
        ],
    ),
]
# the segmentation head gets no gradient without masks (find_unused_parameters: the schedule's)
