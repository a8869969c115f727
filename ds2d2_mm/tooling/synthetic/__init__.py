"""The built-in synthetic aerial scenes (demo data): generator, scene layout, drawing.

Tooling, not core: the registered ``SyntheticAerialDataset`` (``ds2d2_mm.datasets``) reads the
files this writes, and the class names and palette live in ``ds2d2_mm.datasets.classes``; this
package is imported only by the demo pipeline, the benchmark, ``ds2d2-make-synthetic`` and tests.

Modules: :mod:`.generate` (dataset folders, splits, completion marker), :mod:`.scene` (one
scene's layout), :mod:`.objects` (object and distractor appearance), :mod:`.draw` (canvas
primitives), :mod:`.variants` (SAR-like, RGB+NIR and paired RGB / thermal versions of the
scenes).
"""

from .generate import (
    BAND_STATS_FILE,
    SYNTHETIC_VERSION,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    synthetic_dataset_is_complete,
    update_synthetic_dataset,
    write_band_stats,
)
from .variants import VARIANTS

__all__ = [
    "BAND_STATS_FILE",
    "SYNTHETIC_VERSION",
    "VARIANTS",
    "ensure_synthetic_dataset",
    "generate_synthetic_dataset",
    "synthetic_dataset_is_complete",
    "update_synthetic_dataset",
    "write_band_stats",
]
