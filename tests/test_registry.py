"""Importing ds2d2_mm registers every component in the right registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODELS = ["SpectralDistiller", "HighFrequencyAmplifier", "KnowledgeAmplifierBuilder",
          "DISWLoss", "FeatureAdapter", "KDQualityFocalLoss", "KDKLDivLoss",
          "KDRotatedGDLoss", "HaarDWT", "WaveletDWT", "FFTSplit", "SAM3ViTBackbone"]
DATASETS = ["DIORDataset", "DOTAHBBDataset", "SyntheticAerialDataset"]
HOOKS = ["ProgressiveUnfreezeHook"]
OPTIM_CONSTRUCTORS = ["LayerDecayOptimWrapperConstructor"]


@pytest.mark.parametrize("name", MODELS)
def test_models_registered(name):
    from mmdet.registry import MODELS as REG

    assert REG.get(name) is not None, name


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_registered(name):
    from mmdet.registry import DATASETS as REG

    assert REG.get(name) is not None, name


@pytest.mark.parametrize("name", HOOKS)
def test_hooks_registered(name):
    from mmdet.registry import HOOKS as REG

    assert REG.get(name) is not None, name


@pytest.mark.parametrize("name", OPTIM_CONSTRUCTORS)
def test_optim_constructors_registered(name):
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as REG

    assert REG.get(name) is not None, name


def test_strategies_registered():
    from ds2d2_mm.models.distillers.strategies import STRATEGIES

    assert {"SingleStageStrategy", "TwoStageStrategy"} <= set(STRATEGIES.module_dict)


def test_custom_imports_in_a_user_config_registers_the_plugin(tmp_path):
    """A plain MMDetection project adds the plugin with custom_imports alone."""
    cfg = tmp_path / "user_cfg.py"
    cfg.write_text("custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)\n"
                   "model = dict(type='KDQualityFocalLoss')\n")
    code = (
        "from mmengine.config import Config\n"
        "from mmdet.utils import register_all_modules\n"
        "register_all_modules()\n"
        f"cfg = Config.fromfile({str(cfg)!r})\n"
        "from mmdet.registry import MODELS\n"
        "print(type(MODELS.build(cfg.model)).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().endswith("KDQualityFocalLoss")
