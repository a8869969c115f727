"""SAM3's full image model, adapted for detection while staying SAM3.

- :mod:`.build`: ``build_sam3_image_model`` (sam3's own ``Sam3Image`` at the ``"sam3"`` or
  ``"tiny"`` sizes), checkpoint loading, the BPE vocabulary (:mod:`.vocab`);
- :mod:`.policy`: the spectral adapter inside SAM3's ViT and the freeze policy;
- :mod:`.prompts`: mmdet ground truth -> SAM3's prompted batches and targets;
- :mod:`.loss`: SAM3's own matcher and losses with its fine-tuning weights;
- :mod:`.detector`: ``Sam3PromptedDetector``, registered in mmdet's ``MODELS``.

Importing this package does not import sam3: building a model does.
"""

from .build import (
    SAM3_IMAGE_ARCHS,
    BpeVocabNotFoundError,
    build_sam3_image_model,
    load_sam3_image_checkpoint,
    resolve_bpe_path,
    write_tiny_bpe_vocab,
)
from .detector import STAGE_PREFIXES, Sam3PromptedDetector
from .policy import insert_spectral_adapter

__all__ = [
    "SAM3_IMAGE_ARCHS",
    "STAGE_PREFIXES",
    "BpeVocabNotFoundError",
    "Sam3PromptedDetector",
    "build_sam3_image_model",
    "insert_spectral_adapter",
    "load_sam3_image_checkpoint",
    "resolve_bpe_path",
    "write_tiny_bpe_vocab",
]
