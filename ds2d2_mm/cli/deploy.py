"""Ship a student: ONNX export, ONNX Runtime parity, INT8, AP and latency on CPU.

    ds2d2-export-student work_dirs/demo/retina_distill_synthetic/epoch_12.pth student.pth
    ds2d2-deploy configs/demo/retina_student_synthetic.py student.pth --out-dir work_dirs/deploy

Writes <out-dir>/model.onnx (two-stage: features_rpn.onnx and roi_head.onnx), the INT8
<graph>.int8.onnx and deploy.json, and prints the AP / latency table. The config is the plain
student config; the checkpoint the exported student (not the distiller checkpoint).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ds2d2_mm.apis.runner import run_tool


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    from mmengine.config import DictAction

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("config", help="student config (mmdet)")
    p.add_argument("checkpoint", help="exported student checkpoint (ds2d2-export-student)")
    p.add_argument("--out-dir", help="output folder (default work_dirs/deploy/<config stem>)")
    p.add_argument("--calib", help="folder of calibration images (default: the config's train "
                                   "split)")
    p.add_argument("--calib-num", type=int, default=32, help="calibration images (default 32)")
    p.add_argument("--no-int8", action="store_true", help="skip INT8 quantization")
    p.add_argument("--parity-images", type=int, default=4,
                   help="test images of the parity check (default 4)")
    p.add_argument("--no-eval", action="store_true", help="skip the AP of each backend")
    p.add_argument("--latency-images", type=int, default=8,
                   help="test images timed per backend (default 8; 0 skips latency)")
    p.add_argument("--latency-repeats", type=int, default=3, help="rounds over them (default 3)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"torch and ONNX Runtime threads (default: every core, {os.cpu_count()})")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (ONNX Runtime's CUDA provider)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--cfg-options", nargs="+", action=DictAction,
                   help="override config settings, key=value")
    p.add_argument("--debug", action="store_true", help="show the traceback of a known error")
    return p


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, deploy and print the table."""
    args = build_parser().parse_args(argv)
    from ds2d2_mm.apis.deploy.report import deployment_table, measurement_sentence, parity_sentence
    from ds2d2_mm.apis.deploy.run import SUMMARY_NAME, deploy_student

    out_dir = args.out_dir or str(Path("work_dirs") / "deploy" / Path(args.config).stem)
    summary = deploy_student(
        args.config, args.checkpoint, out_dir, calib=args.calib, calib_num=args.calib_num,
        int8=not args.no_int8, parity_images=args.parity_images, evaluate_ap=not args.no_eval,
        latency_images=args.latency_images, latency_repeats=args.latency_repeats,
        warmup=args.warmup, threads=args.threads, device=args.device,
        cfg_options=args.cfg_options, progress=not args.no_progress)
    print(f"\n{summary['model_type']} ({summary['family']}): {summary['path']}")
    print(parity_sentence(summary["parity"]))
    print(deployment_table(summary))
    print(measurement_sentence(summary))
    print(f"wrote {', '.join(f for group in summary['files'].values() for f in group)} and "
          f"{Path(out_dir) / SUMMARY_NAME}")


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-deploy`` and ``tools/deploy.py``."""
    return run_tool(main, argv)


if __name__ == "__main__":
    sys.exit(run())
