"""SAM3's full image model, adapted for detection while staying SAM3.

- :mod:`.build`: ``build_sam3_image_model`` (sam3's own ``Sam3Image`` at the ``"sam3"`` or
  ``"tiny"`` sizes), checkpoint loading, the BPE vocabulary (:mod:`.vocab`).

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

__all__ = [
    "SAM3_IMAGE_ARCHS",
    "BpeVocabNotFoundError",
    "build_sam3_image_model",
    "load_sam3_image_checkpoint",
    "resolve_bpe_path",
    "write_tiny_bpe_vocab",
]
