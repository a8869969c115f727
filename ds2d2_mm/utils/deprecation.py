"""The module paths of the flat layout (``ds2d2_mm.distiller``, ``ds2d2_mm.losses.kd``, ...), kept
importable for one release.

``import ds2d2_mm`` puts a finder at the front of ``sys.meta_path`` that answers exactly the old
names of :data:`OLD_PATHS`: importing one warns (:class:`OldPathWarning`, a ``FutureWarning``,
shown by default) and gives a module object whose attributes are those of the new module(s), the
same objects (classes, functions, constants), so ``from ds2d2_mm.distiller import
SpectralDistiller``, ``custom_imports=dict(imports=['ds2d2_mm.backbones'])`` and registry names
in configs keep working. An old module that was split (``ds2d2_mm.losses.feature_kd``) forwards
to every part. Nothing is loaded twice: the new modules are imported once, by their new names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["OLD_PATHS", "OldPathWarning", "install_old_paths"]

#: The release in which the old paths go away.
REMOVED_IN = "0.3"

_N = "ds2d2_mm."

#: Old module -> the module(s) that hold its names now (the first one is named in the warning).
OLD_PATHS: dict[str, tuple[str, ...]] = {
    _N + old: tuple(_N + n for n in new) for old, new in {
        "amplifiers": ("models.distillers.amplifiers",),
        "checkpoint": ("utils.checkpoint",),
        "cross_modal": ("models.distillers.input_router",),
        "distill_config": ("models.distillers.distill_cfg",),
        "distiller": ("models.distillers.spectral_distiller",),
        "disw": ("models.layers.disw",),
        "errors": ("utils.errors",),
        "export": ("apis.export_student",),
        "hooks": ("engine.hooks.progressive_unfreeze_hook",),
        "multiband_preprocessor": ("models.data_preprocessors.multiband_preprocessor",),
        "optim": ("engine.optimizers.layer_decay_constructor",),
        "prediction_kd": ("models.distillers.prediction_kd",),
        "provenance": ("utils.checkpoint",),
        "runner_utils": ("apis.runner",),
        "self_distill": ("models.distillers.self_distiller",),
        "spectral": ("models.layers.spectral",),
        "strategies": ("models.distillers.strategies",),
        "weight_files": ("utils.checkpoint",),
        "backbones": ("models.backbones", "models.necks", "models.layers"),
        "backbones.inflate": ("models.backbones.inflate",),
        "backbones.retention": ("apis.sam3.trunk_retention",),
        "backbones.sam3": ("models.backbones.sam3_vit",),
        "backbones.sam3_import": ("models.backbones.sam3_import",),
        "backbones.sam3_trunk": ("models.backbones.sam3_trunk",),
        "backbones.simple_pyramid": ("models.necks.simple_pyramid",),
        "backbones.spectral_adapter": ("models.layers.spectral_adapter",),
        "datasets.dior": ("datasets.converters.dior",),
        "datasets.dota": ("datasets.converters.dota_format",),
        "datasets.dota_split": ("datasets.converters.dota_split",),
        "datasets.dronevehicle": ("datasets.converters.dronevehicle",),
        "datasets.io": ("utils.io", "utils.errors", "datasets.converters.common"),
        "datasets.multiband": ("datasets.transforms.multiband_loading",),
        "datasets.paired": ("datasets.transforms.paired_loading",),
        "datasets.paired_dataset": ("datasets.paired_coco",),
        "datasets.xml_lines": ("datasets.converters.xml_lines",),
        "engine.checkpoint_hook": ("engine.hooks.safe_checkpoint_hook",),
        "engine.optim_wrapper": ("engine.optimizers.guarded_optim_wrapper",),
        "evaluation.dota_merge": ("evaluation.functional.dota_merge",),
        "evaluation.dota_metric": ("evaluation.metrics.dota_metric",),
        "losses": ("models.losses", "models.connectors"),
        "losses.explicit": ("models.losses.disw_loss", "models.connectors.feature_adapter"),
        "losses.feature_kd": ("models.losses.fitnet", "models.losses.fgd", "models.losses.pkd",
                               "models.losses.mgd", "models.losses.stream_loss"),
        "losses.kd": ("models.losses.kd_losses",),
        "sam3_full": ("models.detectors.sam3_prompted",),
        "sam3_full.agreement": ("apis.sam3.agreement",),
        "sam3_full.build": ("models.detectors.sam3_prompted.build",),
        "sam3_full.compat": ("models.detectors.sam3_prompted.compat",),
        "sam3_full.detector": ("models.detectors.sam3_prompted.detector",),
        "sam3_full.export": ("apis.sam3.export_full",),
        "sam3_full.loss": ("models.detectors.sam3_prompted.loss",),
        "sam3_full.policy": ("models.detectors.sam3_prompted.policy",),
        "sam3_full.prompts": ("models.detectors.sam3_prompted.prompts",),
        "sam3_full.retention": ("apis.sam3.output_retention",),
        "sam3_full.retention_prompts": ("apis.sam3.retention_prompts",),
        "sam3_full.vocab": ("models.detectors.sam3_prompted.vocab",),
    }.items()
}


class OldPathWarning(FutureWarning):
    """A module path of the flat layout was imported (it works until :data:`REMOVED_IN`)."""


class _ForwardingModule(types.ModuleType):
    """An old module: its attributes are looked up in the new module(s), in order."""

    def __init__(self, name: str, targets: Sequence[types.ModuleType]) -> None:
        super().__init__(name, targets[0].__doc__)
        object.__setattr__(self, "_targets", tuple(targets))

    def __getattr__(self, attr: str) -> Any:
        for target in object.__getattribute__(self, "_targets"):
            if hasattr(target, attr):
                return getattr(target, attr)
        raise AttributeError(f"module {self.__name__!r} (now "
                             f"{self._targets[0].__name__!r}) has no attribute {attr!r}")

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        for target in self._targets:
            names.update(dir(target))
        return sorted(names)


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads the names of :data:`OLD_PATHS`, nothing else."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname not in OLD_PATHS:
            return None
        is_package = any(name.startswith(fullname + ".") for name in OLD_PATHS)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = OLD_PATHS[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new[0]}"
            f"{' (and ' + ', '.join(new[1:]) + ')' if len(new) > 1 else ''}; the old path "
            f"works until ds2d2_mm {REMOVED_IN}: update the import (or custom_imports, which "
            "needs only 'ds2d2_mm')", OldPathWarning, stacklevel=2)
        module = _ForwardingModule(spec.name, [importlib.import_module(n) for n in new])
        if spec.submodule_search_locations is not None:
            module.__path__ = []  # its submodules are old paths too, answered by this finder
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module forwards to modules already imported."""


_FINDER = _OldPathFinder()


def install_old_paths() -> None:
    """Put the finder of the old paths first in ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _OldPathFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)
