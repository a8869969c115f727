"""What the project's train/test tools share: config loading, scope set-up and weight checks."""

from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config

from .weight_files import check_weight_files

__all__ = ["add_launch_args", "check_weight_files", "init_scope", "load_config",
           "mm_base_model", "parse_launch_args", "prepare_config"]


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
    """The options every MM tool shares: ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    from mmengine.config import DictAction

    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"],
                        default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and export ``LOCAL_RANK`` as torch's launchers expect."""
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def prepare_config(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with the command line applied and its scope set up."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.launcher = args.launcher
    init_scope(cfg)
    return cfg
