"""What the project's train/test tools share: config loading, scope set-up and weight checks."""

from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import TYPE_CHECKING

from mmengine.config import Config

from ..utils.checkpoint import check_weight_files

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mmengine.runner import Runner

__all__ = ["add_launch_args", "check_amp", "check_checkpoint_fits", "check_distill_config",
           "check_weight_files", "command_parser",
           "init_scope", "load_config", "make_runs_safe", "mm_base_model", "parse_command_line",
           "parse_launch_args", "prepare_config", "resume_checkpoint", "run_tool",
           "runner_from_cfg", "setup_cpu_distributed"]


def init_scope(cfg: Config) -> str:
    """Register the modules of the config's ``default_scope`` (mmdet or mmrotate) and the plugin.

    Returns the scope name. mmrotate configs use ``default_scope='mmrotate'``; everything else
    runs in mmdet's scope.
    """
    scope = cfg.get("default_scope", "mmdet")
    if scope == "mmrotate":
        from mmrotate.utils import register_all_modules as register_rotate

        register_rotate(init_default_scope=False)
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    from mmengine.registry import DefaultScope

    import ds2d2_mm  # noqa: F401  (registers the plugin)

    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != scope:
        DefaultScope.get_instance(f"ds2d2-{scope}-{os.getpid()}", scope_name=scope)
    cfg.default_scope = scope
    return scope


def mm_base_model(name: str, package: str = "mmdet") -> dict:
    """The ``model`` dict of a config shipped inside an OpenMMLab package, e.g.
    ``mm_base_model("retinanet_r50_fpn.py")`` for ``mmdet::_base_/models/retinanet_r50_fpn.py``."""
    import importlib
    from pathlib import Path

    root = Path(importlib.import_module(package).__file__).parent / ".mim" / "configs"
    return Config.fromfile(str(root / "_base_" / "models" / name)).model.to_dict()


def load_config(path: str, cfg_options: dict | None = None, work_dir: str | None = None) -> Config:
    """Read a config, apply ``--cfg-options`` and choose the work dir as mmdet's tools do."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(path))[0])
    return cfg


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """The options every MM tool shares: ``--cfg-options``, ``--launcher``, ``--local-rank``,
    ``--debug``."""
    from mmengine.config import DictAction

    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, key=value")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of a known error")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"],
                        default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and export ``LOCAL_RANK`` as torch's launchers expect."""
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def command_parser(description: str, config_help: str,
                   work_dir_help: str) -> argparse.ArgumentParser:
    """The parser of a train or test command with what both take first: the config and
    ``--work-dir``. The command adds its own options, then parses with
    :func:`parse_command_line`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("config", help=config_help)
    parser.add_argument("--work-dir", help=work_dir_help)
    return parser


def parse_command_line(parser: argparse.ArgumentParser,
                       argv: list[str] | None = None) -> argparse.Namespace:
    """``argv`` parsed by ``parser`` with the options every MM tool shares added last
    (:func:`add_launch_args`, :func:`parse_launch_args`)."""
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


def prepare_config(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with the command line applied and its scope set up."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.launcher = args.launcher
    init_scope(cfg)
    return cfg


def make_runs_safe(cfg: Config) -> list[str]:
    """Give a training config this project's safe engine pieces, in place; returns what changed.

    - mmengine's ``CheckpointHook`` becomes :class:`~ds2d2_mm.engine.SafeCheckpointHook` (same
      options, atomic saves, no non-finite weights saved);
    - a distiller with ``distill_cfg.nonfinite='skip'`` gets the guarded counterpart of its
      optimizer wrapper (the step skipping needs it).
    """
    from ..engine.optimizers.guarded_optim_wrapper import GUARDED

    changes = []
    hook = cfg.get("default_hooks", {}).get("checkpoint")
    if hook is not None and hook.get("type") in ("CheckpointHook", "mmengine.CheckpointHook"):
        hook["type"] = "SafeCheckpointHook"
        changes.append("default_hooks.checkpoint: SafeCheckpointHook (atomic saves)")
    model = cfg.get("model", {})
    skip = (model.get("type") == "SpectralDistiller"
            and (model.get("distill_cfg") or {}).get("nonfinite") == "skip")
    wrapper = cfg.get("optim_wrapper", {})
    if skip and wrapper.get("type", "OptimWrapper") in GUARDED:
        wrapper["type"] = GUARDED[wrapper.get("type", "OptimWrapper")]
        changes.append(f"optim_wrapper: {wrapper['type']} (distill_cfg.nonfinite='skip')")
    return changes


def check_distill_config(cfg: Config) -> None:
    """Validate a distiller's ``distill_cfg`` before anything else is checked or built (the KD
    losses, which need the student, are checked when the model is built)."""
    model = cfg.get("model", {})
    if model.get("type") == "SpectralDistiller":
        from ..datasets.paired_coco import config_modalities
        from ..models.distillers.distill_cfg import check_modality_keys, merge_distill_cfg
        from ..utils.errors import ConfigError

        distill = merge_distill_cfg(model.get("distill_cfg"))
        if distill["teacher_input"] is None:
            return
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            dataset = (cfg.get(loader) or {}).get("dataset")
            if dataset is None:
                continue
            known = config_modalities(dataset)
            if known is None:
                raise ConfigError(
                    f"distill_cfg.teacher_input / student_input are set but {loader}.dataset "
                    "reads one image per sample; give it one data_prefix per modality, e.g. "
                    "data_prefix=dict(rgb='train/rgb/', ir='train/ir/'), and LoadPairedImages")
            check_modality_keys(distill, known, f"{loader}.dataset (its data_prefix keys)")


def check_amp(cfg: Config) -> None:
    """Refuse bfloat16 autocast for models with mmdet's sigmoid focal loss: on a GPU it runs
    mmcv's CUDA kernel, which has no bfloat16 version (fp16, what ``--amp`` selects, works)."""
    from ..utils.errors import ConfigError

    wrapper = cfg.get("optim_wrapper", {})
    if "Amp" not in str(wrapper.get("type", "")) or str(wrapper.get("dtype")) not in (
            "bfloat16", "torch.bfloat16"):
        return
    focal = [key for key, value in _walk(cfg.get("model", {}), "model")
             if key.endswith(".type") and str(value).split(".")[-1] == "FocalLoss"]
    if focal:
        raise ConfigError(
            f"optim_wrapper.dtype='bfloat16' with {focal[0].rsplit('.', 1)[0]} = FocalLoss: "
            "mmcv's CUDA sigmoid focal loss has no bfloat16 kernel; use fp16 autocast "
            "(tools/train.py --amp, or optim_wrapper.dtype='float16')")


def _walk(node, path: str):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


def setup_cpu_distributed(cfg: Config) -> bool:
    """Distributed runs without a GPU (CPU clusters, tests): gloo, and DDP without device ids.

    mmengine's launcher set-up selects a CUDA device, which fails without one; here the process
    group is set up from the launcher's environment (``torchrun``: RANK, WORLD_SIZE, MASTER_*;
    Slurm: SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST) before the runner, which then keeps it.
    Returns whether it did anything.
    """
    import subprocess

    import torch
    import torch.distributed as dist

    launcher = cfg.get("launcher", "none")
    if launcher == "none" or torch.cuda.is_available() or dist.is_initialized():
        return False
    if launcher == "slurm":
        os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
        os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
        os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
        if "MASTER_ADDR" not in os.environ:
            nodes = os.environ["SLURM_NODELIST"]
            os.environ["MASTER_ADDR"] = subprocess.getoutput(
                f"scontrol show hostname {nodes} | head -n1")
        os.environ.setdefault("MASTER_PORT", "29500")
    elif launcher != "pytorch":
        return False
    dist.init_process_group(backend="gloo")
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None,
                                 broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))
    return True


def runner_from_cfg(cfg: Config) -> Runner:
    """The runner of a checked config: the process group of a distributed CPU run first
    (:func:`setup_cpu_distributed`), then mmengine's ``Runner`` or the config's ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    setup_cpu_distributed(cfg)
    return Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)


def resume_checkpoint(cfg: Config) -> str | None:
    """The file a ``resume=True`` run will load: ``load_from``, or the work dir's latest."""
    from mmengine.runner import find_latest_checkpoint

    if not cfg.get("resume", False):
        return None
    return cfg.get("load_from") or find_latest_checkpoint(cfg.work_dir)


def check_checkpoint_fits(model, path: str, what: str) -> None:
    """Refuse ``path`` unless its weights fit ``model`` (unwrapped from DDP), naming the file and
    the missing, unexpected and mis-shaped keys."""
    import torch
    from mmengine.model import is_model_wrapper

    from ..utils.checkpoint import check_state_fits, read_state_dict, upgraded_state

    model = model.module if is_model_wrapper(model) else model
    own = {k: v for k, v in model.state_dict().items() if torch.is_tensor(v)}
    state = upgraded_state(model, read_state_dict(path, what))
    check_state_fits(own, state, f"{what} {path!r} does not fit the {type(model).__name__} built "
                     "from the config",
                     "Check that the config is the one the checkpoint was trained with "
                     "(a teacher's or a distiller's checkpoint does not fit a student config: "
                     "export the student with tools/export_student.py).")


def run_tool(main, argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; the project's known errors become one message and exit code 1
    (``--debug`` in ``argv`` keeps the traceback)."""
    import sys
    import traceback

    from ..utils.errors import MissingInputError, known_errors

    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        main(argv)
    except known_errors() as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        if not debug and not isinstance(err, MissingInputError):
            print("(run with --debug for the traceback)", file=sys.stderr)
        return 1
    close_process_group()
    return 0


def close_process_group() -> None:
    """After a run that ended normally: wait for every rank, then destroy the default process
    group of a distributed run, if one was started, before the interpreter exits (mmengine
    leaves it open; a gloo group torn down at exit while another rank is closing its sockets can
    abort the process with ``terminate called without an active exception``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
