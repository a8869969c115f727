"""The module paths of the flat layout still import, warn, and give the very same objects as the
new ones (one release of grace for user code and configs)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest
from ds2d2_testlib import REPO

from ds2d2_mm.utils.deprecation import OLD_PATHS, OldPathWarning

#: (old import, name, new module that defines it)
SAME_OBJECTS = [
    ("ds2d2_mm.distiller", "SpectralDistiller", "ds2d2_mm.models.distillers.spectral_distiller"),
    ("ds2d2_mm.strategies", "SingleStageStrategy",
     "ds2d2_mm.models.distillers.strategies.single_stage"),
    ("ds2d2_mm.losses", "DISWLoss", "ds2d2_mm.models.losses.disw_loss"),
    ("ds2d2_mm.losses", "FeatureAdapter", "ds2d2_mm.models.connectors.feature_adapter"),
    ("ds2d2_mm.losses.feature_kd", "FGDLoss", "ds2d2_mm.models.losses.fgd"),
    ("ds2d2_mm.losses.feature_kd", "pkd_standardise", "ds2d2_mm.models.losses.pkd"),
    ("ds2d2_mm.losses.explicit", "align_to", "ds2d2_mm.models.connectors.feature_adapter"),
    ("ds2d2_mm.losses.kd", "KDQualityFocalLoss", "ds2d2_mm.models.losses.kd_losses"),
    ("ds2d2_mm.backbones", "SAM3ViTBackbone", "ds2d2_mm.models.backbones.sam3_vit"),
    ("ds2d2_mm.backbones", "SpectralAdapter", "ds2d2_mm.models.layers.spectral_adapter"),
    ("ds2d2_mm.backbones.sam3_trunk", "run_trunk", "ds2d2_mm.models.backbones.sam3_trunk"),
    ("ds2d2_mm.datasets.io", "DatasetError", "ds2d2_mm.utils.errors"),
    ("ds2d2_mm.datasets.io", "atomic_write_json", "ds2d2_mm.utils.io"),
    ("ds2d2_mm.checkpoint", "load_checkpoint_checked", "ds2d2_mm.utils.checkpoint"),
    ("ds2d2_mm.provenance", "digest_hex", "ds2d2_mm.utils.checkpoint"),
    ("ds2d2_mm.weight_files", "check_weight_files", "ds2d2_mm.utils.checkpoint"),
    ("ds2d2_mm.hooks", "ProgressiveUnfreezeHook",
     "ds2d2_mm.engine.hooks.progressive_unfreeze_hook"),
    ("ds2d2_mm.engine.optim_wrapper", "GuardedOptimWrapper",
     "ds2d2_mm.engine.optimizers.guarded_optim_wrapper"),
    ("ds2d2_mm.sam3_full", "Sam3PromptedDetector",
     "ds2d2_mm.models.detectors.sam3_prompted.detector"),
    ("ds2d2_mm.sam3_full.export", "load_sam3_with_adapter", "ds2d2_mm.apis.sam3.export_full"),
    ("ds2d2_mm.runner_utils", "run_tool", "ds2d2_mm.apis.runner"),
]


@pytest.mark.parametrize(("old", "name", "new"), SAME_OBJECTS)
def test_an_old_path_warns_and_gives_the_new_object(old, name, new):
    sys.modules.pop(old, None)
    with pytest.warns(OldPathWarning, match=rf"{old} moved to"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert getattr(importlib.import_module(new), name).__module__ == new


def test_every_old_path_imports_and_every_target_exists():
    for old, targets in OLD_PATHS.items():
        sys.modules.pop(old, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OldPathWarning)
            module = importlib.import_module(old)
        assert dir(module), old
        for target in targets:
            importlib.import_module(target)


def test_an_unknown_name_of_an_old_module_says_where_it_looked():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OldPathWarning)
        module = importlib.import_module("ds2d2_mm.distiller")
    with pytest.raises(AttributeError, match="ds2d2_mm.models.distillers.spectral_distiller"):
        module.NoSuchThing  # noqa: B018


def test_old_custom_imports_of_a_config_register_nothing_twice():
    """A config of the flat layout (``custom_imports`` of old module names, as the SAM3 configs
    had) builds its models in a fresh process, the warning shown by default."""
    code = (
        "from mmengine.config import Config; "
        "from mmengine.utils import import_modules_from_strings as imp; "
        "imp(['ds2d2_mm.backbones', 'ds2d2_mm.hooks', 'ds2d2_mm.optim', "
        "'ds2d2_mm.self_distill']); "
        "from mmdet.registry import MODELS; from mmengine.registry import HOOKS; "
        "import ds2d2_mm.models.backbones.sam3_vit as b; "
        "assert MODELS.get('SAM3ViTBackbone') is b.SAM3ViTBackbone; "
        "assert HOOKS.get('ProgressiveUnfreezeHook') is not None; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
    assert "ds2d2_mm.backbones moved to ds2d2_mm.models.backbones" in proc.stderr
