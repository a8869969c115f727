"""Knowledge amplifiers: heads that turn feature gaps into prediction gaps.

- Full-frequency amplifier: the teacher's own head, frozen, run on student and teacher features.
- High-frequency amplifier: a copy of the teacher's head trained in its own stage
  (:class:`HighFrequencyAmplifier`) on the teacher's high-frequency maps, with the teacher's
  backbone and neck frozen; frozen during distillation and run on the high-frequency maps of both.

:class:`KnowledgeAmplifierBuilder` makes both from a built teacher and the amplifier stage's
config and checkpoint, for every family a
:class:`~ds2d2_mm.models.distillers.strategies.DistillStrategy` supports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import Config, ConfigDict
from torch import Tensor, nn

from ...utils.checkpoint import digest_tensor, load_checkpoint_checked, local_checkpoint
from ...utils.errors import CheckpointError, ConfigError
from ..layers.spectral import build_decomposer, high_frequency_from_bands, high_frequency_map
from .base import FrozenPartsDetector
from .strategies import DistillStrategy


def freeze(module: nn.Module) -> nn.Module:
    """Switch off gradients and put ``module`` in eval mode; returns it."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def drop_pretrained_init(cfg: dict) -> None:
    """Remove every ``init_cfg`` of type ``Pretrained`` (or ``PretrainedInflated``) from a model
    config, in place."""
    for value in list(cfg.values()):
        if isinstance(value, dict):
            drop_pretrained_init(value)
    init = cfg.get("init_cfg")
    if isinstance(init, dict) and init.get("type") in ("Pretrained", "PretrainedInflated"):
        cfg["init_cfg"] = None


def config_file(config: str | Path, what: str) -> tuple[str, str | None]:
    """(path, package scope) of a config reference: a package-scoped name such as
    ``mmdet::retinanet/retinanet_r50_fpn_1x_coco.py`` (resolved by mmengine's own lookup, the one
    ``_base_`` uses), or a path relative to the working directory.

    Raises:
        ConfigError: naming the reference and what was looked for.
    """
    config = str(config)
    if "::" in config:
        try:
            path, scope = Config._get_cfg_path(config, "")
        except (FileNotFoundError, ModuleNotFoundError, ValueError, AssertionError) as err:
            raise ConfigError(f"{what} config {config!r} cannot be resolved: {err}") from None
        return path, scope
    if not Path(config).is_file():
        raise ConfigError(f"{what} config not found: {config!r} (working directory "
                          f"{Path.cwd()}); give a path or a package-scoped name like "
                          "'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'")
    return config, None


def model_cfg_of(config: str | Path | dict, what: str) -> ConfigDict:
    """The ``model`` section of a config (a file, a package-scoped name or a dict), or
    ``config`` itself when it is a model dict. A model from another package's config, or from a
    config with another ``default_scope``, is built in that scope (``_scope_``)."""
    if isinstance(config, (str, Path)):
        path, scope = config_file(config, what)
        cfg = Config.fromfile(path)
        if "model" not in cfg:
            raise ConfigError(f"{what} config {config} has no 'model' section")
        model = copy.deepcopy(cfg.model)
        scope = cfg.get("default_scope", None) or scope
        if scope and "_scope_" not in model:
            model["_scope_"] = scope
        return model
    cfg = ConfigDict(copy.deepcopy(dict(config)))
    return cfg.model if "model" in cfg else cfg


def stage_hint(config: str | Path | dict | None, stage: str) -> str:
    """'which stage writes this checkpoint, and the command that runs it'."""
    if isinstance(config, (str, Path)):
        name = Path(str(config).split("::")[-1]).stem
        return (f"It is written by the {stage} stage: run `ds2d2-train {config}` "
                f"(`python tools/train.py` in a checkout; its checkpoint lands in "
                f"work_dirs/{name}/), then point the config at it.")
    return f"It is written by the {stage} stage (ds2d2-train on the {stage} config)."


@MODELS.register_module()
class HighFrequencyAmplifier(FrozenPartsDetector):
    """The amplifier training stage: a teacher-architecture detector whose heads learn on the
    teacher's high-frequency maps, with backbone and neck frozen from the teacher checkpoint.

    Works for any detector family: the wrapped detector's own ``loss``/``predict`` run unchanged on
    the high-frequency features (its ``extract_feat`` is redirected on this instance).

    Args:
        detector: Model config of the teacher architecture.
        teacher_ckpt: Teacher checkpoint that initialises the whole detector (heads included).
        decomposer: Spectral decomposer (``'haar'``, a pywt wavelet name, ``'fft'`` or a dict).
        teacher_config: Path of the teacher's config, only used to say how to make the checkpoint.
        data_preprocessor: Defaults to the detector's.
    """

    def __init__(self, detector: dict, teacher_ckpt: str | None = None,
                 decomposer: str | dict | None = "haar", teacher_config: str | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        detector = ConfigDict(copy.deepcopy(detector))
        super().__init__(data_preprocessor=data_preprocessor or detector.get("data_preprocessor"),
                         init_cfg=init_cfg)
        detector.pop("init_cfg", None)
        teacher_ckpt = local_checkpoint(teacher_ckpt, "model.teacher_ckpt")
        if teacher_ckpt is not None:
            # every weight comes from the teacher checkpoint: ImageNet initialisation of the
            # backbone would only fetch a file to overwrite it
            drop_pretrained_init(detector)
        self.detector = MODELS.build(detector)
        self.teacher_ckpt = teacher_ckpt
        self._teacher_hint = stage_hint(teacher_config, "teacher")
        if teacher_ckpt is not None and not Path(teacher_ckpt).is_file():
            raise CheckpointError(f"teacher checkpoint not found: {teacher_ckpt!r}. "
                                  f"{self._teacher_hint}")
        # recorded in this stage's checkpoints, so a distiller can tell whether the amplifier
        # was trained from its teacher (ds2d2_mm.utils.provenance)
        self.register_buffer("teacher_sha256", digest_tensor(teacher_ckpt))
        self.decomposer = build_decomposer(decomposer)
        self.frozen = nn.ModuleList([self.detector.backbone])
        if getattr(self.detector, "neck", None) is not None:
            self.frozen.append(self.detector.neck)
        freeze(self.frozen)
        self.detector.extract_feat = self._extract_high_frequency

    def init_weights(self) -> None:
        """Initialise as configured, then load the teacher checkpoint over everything.

        Loading happens here, not in ``__init__``, because the runner calls ``init_weights`` after
        building the model and would otherwise re-initialise the heads.
        """
        super().init_weights()
        if self.teacher_ckpt is not None:
            load_checkpoint_checked(self.detector, self.teacher_ckpt, "teacher checkpoint",
                                    self._teacher_hint)

    def _extract_high_frequency(self, inputs: Tensor) -> tuple[Tensor, ...]:
        """High-frequency maps (N, C, H_l, W_l) of the frozen teacher's FPN levels."""
        with torch.no_grad():
            feats = self.detector.backbone(inputs)
            if getattr(self.detector, "neck", None) is not None:
                feats = self.detector.neck(feats)
            return tuple(high_frequency_map(f, self.decomposer) for f in feats)

    @property
    def inner(self) -> BaseDetector:
        """The wrapped detector (its ``extract_feat`` gives high-frequency features), which
        ``predict`` and ``tensor`` modes run."""
        return self.detector

    def frozen_modules(self) -> list[nn.Module]:
        """The teacher's backbone and neck (registered: they are part of this stage's
        checkpoint), kept in eval mode."""
        return [self.frozen]

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """The wrapped detector's losses on high-frequency features."""
        return self.detector.loss(batch_inputs, batch_data_samples)


@dataclass
class Amplifier:
    """A frozen amplifier head and, for the high-frequency one, its decomposer."""

    name: str
    head: nn.Module
    decomposer: nn.Module | None = None

    def inputs(self, feats: list[Tensor],
               bands: list[tuple[Tensor, Tensor]] | None = None) -> list[Tensor]:
        """The head's inputs: the features, or their high-frequency maps.

        Args:
            feats: Per level (N, C, H_l, W_l).
            bands: ``self.decomposer(f)`` of each level of ``feats`` when already computed
                (its decomposer the same, :func:`~ds2d2_mm.models.layers.spectral.
                same_decomposition`); the high-frequency maps are then made from them.
        """
        if self.decomposer is None:
            return list(feats)
        if bands is not None:
            return [high_frequency_from_bands(high, tuple(f.shape[-2:]))
                    for f, (_, high) in zip(feats, bands, strict=True)]
        return [high_frequency_map(f, self.decomposer) for f in feats]

    def modules(self) -> list[nn.Module]:
        """Modules to move with the distiller."""
        return [m for m in (self.head, self.decomposer) if m is not None]


def compile_frozen_parts(amplifiers: list[Amplifier], losses: tuple[nn.Module, ...]) -> None:
    """``torch.compile`` the forward of each amplifier's head (an RoI head: its box head, the
    RoI extraction staying eager) and of each KD loss module, in place (the
    ``distill_cfg.accelerate.compile`` option; fewer kernel launches on a GPU)."""
    targets = []
    for amp in amplifiers:
        bbox_head = getattr(amp.head, "bbox_head", None)
        targets.append(bbox_head if hasattr(amp.head, "_bbox_forward") and bbox_head is not None
                       else amp.head)
    for module in (*targets, *losses):
        if "forward" not in module.__dict__:  # once per module (a head may serve twice)
            module.forward = torch.compile(module.forward)


@MODELS.register_module()
class KnowledgeAmplifierBuilder:
    """Builds the full- and high-frequency amplifiers of a distiller.

    Args:
        full: Build the full-frequency amplifier.
        high: Build the high-frequency amplifier (needs the amplifier stage's config and
            checkpoint).
    """

    def __init__(self, full: bool = True, high: bool = True) -> None:
        self.full = full
        self.high = high

    def __call__(self, teacher: BaseDetector, strategy: DistillStrategy,
                 amplifier_config: str | dict | None, amplifier_ckpt: str | None,
                 allow_random: bool = False) -> list[Amplifier]:
        """Amplifiers for ``teacher``.

        Args:
            teacher: The built, frozen teacher.
            strategy: The distiller's family strategy (says which part is the head).
            amplifier_config: Config (path or dict) of the :class:`HighFrequencyAmplifier` stage.
            amplifier_ckpt: That stage's checkpoint.
            allow_random: Accept a missing ``amplifier_ckpt`` (random heads; tests only).
        """
        amps = []
        if self.full:
            amps.append(Amplifier("full", freeze(strategy.amplifier_head(teacher))))
        if self.high:
            if amplifier_config is None:
                raise ConfigError("SpectralDistiller: the high-frequency amplifier needs "
                                 "amplifier_config (or set distill_cfg.amplifiers.high=0)")
            cfg = model_cfg_of(amplifier_config, "amplifier")
            if cfg.get("type") != "HighFrequencyAmplifier":
                raise ConfigError(f"amplifier config {amplifier_config}: model.type must be "
                                 f"'HighFrequencyAmplifier', got {cfg.get('type')!r}")
            cfg.teacher_ckpt = None  # the amplifier checkpoint holds every weight
            stage: HighFrequencyAmplifier = MODELS.build(cfg)
            if amplifier_ckpt is not None or not allow_random:
                load_checkpoint_checked(stage, amplifier_ckpt, "amplifier checkpoint",
                                        stage_hint(amplifier_config, "high-frequency amplifier"),
                                        allow_missing=[r"^teacher_sha256$"])
            head = strategy.amplifier_head(stage.detector)
            amps.append(Amplifier("high", freeze(head), freeze(stage.decomposer)))
        return amps
