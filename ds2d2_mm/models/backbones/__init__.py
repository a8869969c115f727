"""Backbones: SAM3's vision trunk as an mmdet backbone (``SAM3ViTBackbone``), and stem
inflation of RGB checkpoints for C-band inputs (``PretrainedInflated``, :func:`inflate_stem`).

Importing this package registers the backbone in ``mmdet.registry.MODELS`` and is cheap and safe
without sam3 installed: sam3 is imported when a trunk is first built, with the process's TF32
settings preserved (:mod:`ds2d2_mm.models.backbones.sam3_import`).
"""

from .inflate import PretrainedInflated, inflate_stem
from .sam3_import import Sam3NotInstalledError, import_vitdet, preserved_tf32, tf32_state
from .sam3_trunk import (
    SAM3_TRUNK_ARCHS,
    SAM3_TRUNK_PREFIX,
    build_sam3_trunk,
    load_sam3_trunk,
    read_sam3_checkpoint,
    run_trunk,
    trunk_to_sam3_state,
)
from .sam3_vit import SAM3ViTBackbone

__all__ = [
    "PretrainedInflated",
    "SAM3_TRUNK_ARCHS",
    "SAM3_TRUNK_PREFIX",
    "SAM3ViTBackbone",
    "Sam3NotInstalledError",
    "build_sam3_trunk",
    "import_vitdet",
    "inflate_stem",
    "load_sam3_trunk",
    "preserved_tf32",
    "read_sam3_checkpoint",
    "run_trunk",
    "tf32_state",
    "trunk_to_sam3_state",
]
