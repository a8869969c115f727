"""First contact: the files a run reads, checked before the runner starts.

A run of a config reads its datasets (``data_root`` + ``ann_file``, the ``data_prefix`` image
folders, the evaluators' ``ann_file`` / ``ann_dir``) and, for a distiller or an amplifier stage,
the teacher and amplifier checkpoints that earlier stages write. Without this check a missing
dataset surfaces as mmengine's traceback after the runner has printed its environment, and a
missing teacher as a path without the command that makes it.

:func:`check_run_inputs` stops with :class:`~ds2d2_mm.utils.errors.MissingInputError`, whose
text is one paragraph: the config key and the file, which dataset it belongs to, where that
dataset's official release comes from and the command of this project that makes the file (the
converter, the splitter, the generator of the built-in data); for a checkpoint, the config that
trains it and ``python tools/train.py <that config>``. The datasets are told apart by
:data:`FAMILIES` (dataset type first, then the words of the data folder).

Which loaders count: a training run reads the train loader and, with a validation loop, the val
loader and evaluator; a test run the test loader and evaluator; the pipeline all of them.
Files behind a storage backend (``backend_args`` other than the local disk, ``s3://`` paths) are
left to that backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..utils.errors import MissingInputError

__all__ = ["FAMILIES", "DatasetFamily", "MissingFile", "check_checkpoints", "check_datasets",
           "check_run_inputs", "family_of", "missing_dataset_files", "missing_input_message"]

#: The loaders (and their evaluators) that each kind of run reads.
STAGE_LOADERS: dict[str, tuple[str, ...]] = {
    "train": ("train", "val"),
    "test": ("test",),
    "pipeline": ("train", "val", "test"),
}

#: Variants of the built-in data whose folder is ``data/synthetic_<variant>`` (``--variant``).
SYNTHETIC_VARIANTS = ("sar", "rgbn", "paired")


@dataclass(frozen=True)
class MissingFile:
    """A file or folder a config names that is not there.

    Attributes:
        key: Dotted config key, e.g. ``train_dataloader.dataset.ann_file``.
        path: The path as the run would open it (``data_root`` joined), as the config spells it.
        what: ``'annotation file'``, ``'annotation folder'``, ``'image folder'``, ...
        dataset_type: The dataset's registered type (scope prefix removed), ``''`` for an
            evaluator without a dataset.
        data_root: The dataset's ``data_root`` (``''`` when unset).
        ann_file: The dataset's ``ann_file`` (relative to ``data_root``; ``''`` when unset).
    """

    key: str
    path: str
    what: str
    dataset_type: str = ""
    data_root: str = ""
    ann_file: str = ""

    @property
    def split(self) -> str:
        """The first folder of ``ann_file`` (``trainval`` of ``trainval/annfiles/``)."""
        parts = PurePosixPath(self.ann_file).parts
        return parts[0] if len(parts) > 1 else ""


@dataclass(frozen=True)
class DatasetFamily:
    """A dataset this project knows: how to recognise it, where it comes from, what makes it.

    Attributes:
        name: Its name in messages.
        dataset_types: Registered dataset types that are this dataset.
        root_words: Lower-case words of a data path that mark it (for generic types such as
            mmdet's ``CocoDataset``, which mmrotate's SSDD / HRSID configs use).
        release: Where the official release comes from (its project, by name); ``''`` for
            data this project generates.
        layout: What of the release goes where.
        command: The command that makes a missing file (``MissingFile`` -> text; ``None``: the
            file is the release's own, read as it is).
    """

    name: str
    dataset_types: tuple[str, ...]
    root_words: tuple[str, ...]
    release: str
    layout: str
    command: Callable[[MissingFile], str | None]


def _root(missing: MissingFile, default: str) -> str:
    """The dataset folder without its trailing slash (``default`` when the config has none)."""
    return (missing.data_root or default).rstrip("/") or default


def _dior_command(m: MissingFile) -> str:
    root = _root(m, "data/DIOR")
    out = str(PurePosixPath(root, m.ann_file).parent) if m.ann_file else f"{root}/annotations"
    return f"python tools/data/dior_to_coco.py --root {root} --out {out}"


def _dota_command(m: MissingFile) -> str | None:
    if m.what == "source label folder":  # the whole-image metric reads the release's labelTxt
        return None
    root = _root(m, "data/DOTA/split_1024")
    split = m.split or "trainval"
    source = {"trainval": "train"}.get(split, split)  # docs/recipes.md: trainval from train/
    parent = PurePosixPath(root).parent  # the release next to the split: data/DOTA/
    base = str(parent) if "dota" in parent.name.lower() else "data/DOTA"
    cmd = (f"python tools/data/split_dota.py --src {base}/{source} --out {root}/{split}")
    name = PurePosixPath(m.ann_file).name
    if name.endswith(".json"):
        cmd += f" --coco-json {root}/{split}/{name}"
    return cmd


def _dronevehicle_command(m: MissingFile) -> str:
    root = _root(m, "data/DroneVehicle640")
    if root.endswith("640"):  # the cropped layout of the shipped configs
        return ("python tools/data/dronevehicle_to_coco.py --root data/DroneVehicle "
                f"--out {root} --crop-border 100")
    return f"python tools/data/dronevehicle_to_coco.py --root {root} --out {root}"


def _no_command(m: MissingFile) -> None:
    """The configs read the release's files as they are."""
    return None


def _synthetic_command(m: MissingFile) -> str:
    root = _root(m, "data/synthetic_aerial")
    name = PurePosixPath(root).name
    variant = name.removeprefix("synthetic_")
    if variant not in SYNTHETIC_VARIANTS:
        return (f"python tools/data/make_synthetic.py --out {root} (tools/pipeline.py --preset "
                "demo makes it on first use)")
    cmd = f"python tools/data/make_synthetic.py --out {root} --variant {variant}"
    if variant in ("rgbn", "paired"):
        cmd += f" (tools/pipeline.py --preset {variant}_demo makes it on first use)"
    return cmd


#: The datasets of the shipped configs, in the order they are tried.
FAMILIES: tuple[DatasetFamily, ...] = (
    DatasetFamily(
        "DIOR", ("DIORDataset",), ("dior",),
        "the DIOR dataset's release by its authors (Li, Wan, Cheng, Meng and Han, \"Object "
        "detection in optical remote sensing images: a survey and a new benchmark\", ISPRS 2020)",
        "unpack JPEGImages-trainval/, JPEGImages-test/, Annotations/ and ImageSets/Main/ into "
        "the data folder",
        _dior_command),
    DatasetFamily(
        "DOTA v1.0", ("DOTADataset", "DOTAHBBDataset", "DOTAv15Dataset", "DOTAv2Dataset"),
        ("dota",),
        "the DOTA project's release of DOTA v1.0 (Xia et al., \"DOTA: a large-scale dataset for "
        "object detection in aerial images\", CVPR 2018)",
        "unpack its train/ and val/ splits (images/, labelTxt/) into data/DOTA/",
        _dota_command),
    DatasetFamily(
        "DroneVehicle", ("DroneVehicleDataset",), ("dronevehicle",),
        "the DroneVehicle project's release (Sun, Cao, Zhu and Hu, \"Drone-based RGB-infrared "
        "cross-modality vehicle detection via uncertainty-aware learning\", IEEE TCSVT 2022)",
        "unpack train/, val/ and test/ (RGB and infrared images and labels) into "
        "data/DroneVehicle/",
        _dronevehicle_command),
    DatasetFamily(
        "SSDD", ("SSDDDataset",), ("ssdd",),
        "the Official-SSDD release (Zhang, Zhang, Li and Xu, \"SAR ship detection dataset "
        "(SSDD): official release and comprehensive data analysis\", Remote Sensing 2021)",
        "unpack its rotated-box COCO version as mmrotate's SSDD config reads it (data/ssdd/: "
        "train/train.json, train/images/, test/all/test.json, test/all/images/)",
        _no_command),
    DatasetFamily(
        "HRSID", ("HRSIDDataset",), ("hrsid",),
        "the HRSID project's release (Wei, Zeng, Qu, Wang, Su and Shi, \"HRSID: a "
        "high-resolution SAR images dataset for ship detection and instance segmentation\", "
        "IEEE Access 2020)",
        "unpack its JPEG version as mmrotate's HRSID config reads it (data/HRSID_JPG/: "
        "JPEGImages/, annotations/train2017.json, annotations/test2017.json)",
        _no_command),
    DatasetFamily(
        "the built-in synthetic scenes", ("SyntheticAerialDataset",), ("synthetic",),
        "", "",
        _synthetic_command),
)


def _short_type(dataset_type: Any) -> str:
    name = dataset_type if isinstance(dataset_type, str) else getattr(dataset_type, "__name__", "")
    return str(name).rsplit(".", 1)[-1]


def family_of(dataset_type: str, *paths: str) -> DatasetFamily | None:
    """The family of a dataset type, else the one whose word appears in one of ``paths``."""
    short = _short_type(dataset_type)
    for family in FAMILIES:
        if short in family.dataset_types:
            return family
    text = " ".join(p.lower() for p in paths if p)
    for family in FAMILIES:
        if any(word in text for word in family.root_words):
            return family
    return None


def _join(root: str, path: str) -> str:
    """``path`` as mmengine's ``BaseDataset`` opens it: below ``root`` unless absolute."""
    if not root or os.path.isabs(path):
        return path
    return root.rstrip("/") + "/" + path if path else root


def _remote(path: str, backend_args: Any) -> bool:
    if "://" in str(path):
        return True
    return isinstance(backend_args, Mapping) and backend_args.get("backend", "local") != "local"


def _datasets(node: Any, key: str) -> Iterator[tuple[str, Mapping]]:
    """Every dataset dict under a loader's ``dataset`` (wrappers opened: ``dataset``,
    ``datasets``)."""
    if not isinstance(node, Mapping):
        return
    if "datasets" in node:
        for i, inner in enumerate(node["datasets"] or []):
            yield from _datasets(inner, f"{key}.datasets[{i}]")
    elif isinstance(node.get("dataset"), Mapping):
        yield from _datasets(node["dataset"], f"{key}.dataset")
    else:
        yield key, node


def _dataset_files(key: str, ds: Mapping) -> Iterator[MissingFile]:
    root = str(ds.get("data_root") or "")
    kind = _short_type(ds.get("type", ""))
    if _remote(root, ds.get("backend_args")):
        return
    ann = ds.get("ann_file")
    if isinstance(ann, str) and ann:
        path = _join(root, ann)
        is_dir = ann.endswith("/") or not PurePosixPath(ann).suffix
        if not (Path(path).is_dir() if is_dir else Path(path).is_file()):
            yield MissingFile(f"{key}.ann_file", path,
                              "annotation folder" if is_dir else "annotation file", kind, root,
                              ann)
    prefix = ds.get("data_prefix") or {}
    if isinstance(prefix, Mapping):
        for name, value in prefix.items():
            if not isinstance(value, str):
                continue
            folder = _join(root, value)
            if folder and not Path(folder).is_dir():
                yield MissingFile(f"{key}.data_prefix.{name}", folder, "image folder", kind,
                                  root, str(ann or ""))


def _evaluator_files(key: str, evaluator: Any) -> Iterator[MissingFile]:
    items = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    for i, ev in enumerate(items):
        if not isinstance(ev, Mapping):
            continue
        where = key if len(items) == 1 else f"{key}[{i}]"
        for field, what in (("ann_file", "evaluation annotation file"),
                            ("ann_dir", "source label folder")):
            value = ev.get(field)
            if not isinstance(value, str) or not value or _remote(value,
                                                                  ev.get("backend_args")):
                continue
            if field == "ann_dir" and ev.get("format_only"):
                continue  # DOTAWholeImageMetric writes the submission alone: no labels read
            exists = Path(value).is_dir() if field == "ann_dir" else Path(value).is_file()
            if not exists:
                yield MissingFile(f"{where}.{field}", value, what)


def missing_dataset_files(cfg: Mapping, stage: str = "train") -> list[MissingFile]:
    """Every dataset file or folder of ``cfg`` that a ``stage`` run reads and that is absent.

    Args:
        cfg: The config (a ``Config`` or a dict).
        stage: ``'train'``, ``'test'`` or ``'pipeline'`` (:data:`STAGE_LOADERS`).
    """
    if stage not in STAGE_LOADERS:
        raise ValueError(f"stage must be one of {sorted(STAGE_LOADERS)}, got {stage!r}")
    missing: list[MissingFile] = []
    for split in STAGE_LOADERS[stage]:
        loader = cfg.get(f"{split}_dataloader")
        if not isinstance(loader, Mapping):
            continue
        if split == "val" and stage == "train" and not cfg.get("val_cfg"):
            continue  # mmengine builds the val loop only with a val_cfg
        types = []
        for key, ds in _datasets(loader, f"{split}_dataloader"):
            types.append((_short_type(ds.get("type", "")), str(ds.get("data_root") or "")))
            missing.extend(_dataset_files(key, ds))
        for m in _evaluator_files(f"{split}_evaluator", cfg.get(f"{split}_evaluator")):
            dataset_type, root = types[0] if types else ("", "")
            missing.append(MissingFile(m.key, m.path, m.what, dataset_type, root))
    seen, unique = set(), []
    for m in missing:  # val and test loaders are often one dict
        if m.path not in seen:
            seen.add(m.path)
            unique.append(m)
    return unique


def missing_input_message(missing: list[MissingFile], config: str = "") -> str:
    """One paragraph: the first missing dataset file, its dataset, the release and the
    commands that make every missing file of it (and how many more files are missing)."""
    m = missing[0]
    family = family_of(m.dataset_type, m.data_root, m.path)
    where = f"{config}: " if config else ""
    text = (f"{where}{m.key} = {m.path!r} does not exist (working directory {os.getcwd()}). "
            f"It is the {m.what} of ")
    if family is None:
        kind = f"the {m.dataset_type} dataset" if m.dataset_type else "the dataset"
        text += (f"{kind} of this config, which is none of the datasets this project prepares "
                 f"({', '.join(f.name for f in FAMILIES)}): put the files where the config "
                 "says, or change data_root / ann_file / data_prefix (--cfg-options); the "
                 "layouts the shipped configs read are in docs/recipes.md#data-preparation.")
    else:
        typed = f" ({m.dataset_type})" if m.dataset_type else ""
        same = [x for x in missing if family_of(x.dataset_type, x.data_root, x.path) is family]
        commands = [c for c in dict.fromkeys(family.command(x) for x in same) if c]
        them = "it" if len(same) == 1 else "the missing files"
        make = (f" Then make {them} with: {'; '.join(commands)}." if commands else
                " No conversion: the config reads the release's files as they are.")
        if family.release:
            text += (f"{family.name}{typed}. The official release: {family.release}; "
                     f"{family.layout}.{make}")
        else:
            text += (f"{family.name}{typed}, which has no release to download: this project "
                     f"generates it (deterministic, seconds) with: {'; '.join(commands)}.")
    if len(missing) > 1:
        others = ", ".join(repr(x.path) for x in missing[1:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        text += f" Also missing: {others}{more}."
    return text


def check_datasets(cfg: Mapping, stage: str = "train", config: str = "") -> None:
    """Raise :class:`MissingInputError` (one paragraph) when a dataset file of ``cfg`` that a
    ``stage`` run reads is absent."""
    missing = missing_dataset_files(cfg, stage)
    if missing:
        raise MissingInputError(missing_input_message(missing, config))


# -- teacher and amplifier checkpoints -----------------------------------------------------------

#: Model keys naming a checkpoint an earlier stage writes, with their config key and stage name.
STAGE_CHECKPOINTS = (("teacher_ckpt", "teacher_config", "teacher"),
                     ("amplifier_ckpt", "amplifier_config", "high-frequency amplifier"))

_REMOTE_PREFIXES = ("torchvision://", "modelzoo://", "open-mmlab://", "openmmlab://", "mmcls://",
                    "http://", "https://")


def _relative(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _config_path(config: Any) -> str | None:
    """A stage's config as a file to pass to tools/train.py (package names resolved)."""
    if not isinstance(config, (str, os.PathLike)):
        return None
    config = str(config)
    if "::" in config:
        from mmengine.config import Config

        try:
            config, _ = Config._get_cfg_path(config, "")
        except Exception:  # unresolvable names are reported when the model is built
            return None
    return _relative(config)


def _stage_text(ckpt: str, config_key: str, ckpt_key: str, config: Any, stage: str) -> str:
    """How the checkpoint of ``stage`` is made: its config and the command."""
    train_cfg = _config_path(config)
    if train_cfg is None:
        return (f"the {stage} stage writes it: train the config given inline in "
                f"model.{config_key} with python tools/train.py, then set model.{ckpt_key} to "
                "its checkpoint")
    lands = Path("work_dirs", Path(train_cfg).stem)
    where = (f"it writes {ckpt}" if Path(ckpt).parent == lands
             else f"its checkpoints land in {lands}/: point model.{ckpt_key} at the last one "
                  "with --cfg-options")
    return (f"the {stage} stage, config {train_cfg}, trains it with the command "
            f"`python tools/train.py {train_cfg}` ({where})")


def check_checkpoints(cfg: Mapping, config: str = "") -> None:
    """Raise :class:`MissingInputError` when a teacher or amplifier checkpoint that the model
    loads is a local file that is absent, naming it, the config that trains it and the command.

    Both missing: the teacher comes first (the amplifier stage starts from it)."""
    model = cfg.get("model") or {}
    found = []
    for ckpt_key, config_key, stage in STAGE_CHECKPOINTS:
        ckpt = model.get(ckpt_key)
        if not isinstance(ckpt, str) or not ckpt or ckpt.startswith(_REMOTE_PREFIXES):
            continue
        if not Path(ckpt).is_file():
            how = _stage_text(ckpt, config_key, ckpt_key, model.get(config_key), stage)
            found.append((ckpt_key, ckpt, how, stage))
    if not found:
        return
    where = f"{config}: " if config else ""
    parts = [f"model.{key} = {ckpt!r} does not exist: {how}" for key, ckpt, how, _ in found]
    text = f"{where}{'; and '.join(parts)} (working directory {os.getcwd()})."
    if len(found) == 2:
        text += " Train the teacher first: the amplifier stage starts from its checkpoint."
    raise MissingInputError(text)


def check_run_inputs(cfg: Mapping, stage: str = "train", config: str = "",
                     checkpoints: bool = True) -> None:
    """The datasets of a ``stage`` run, then (``checkpoints``) the teacher and amplifier files:
    the first that is missing stops the run with one paragraph (:class:`MissingInputError`)."""
    check_datasets(cfg, stage, config)
    if checkpoints:
        check_checkpoints(cfg, config)
