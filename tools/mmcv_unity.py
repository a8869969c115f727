"""Rewrite an extracted mmcv 2.1.0 source tree for a unity build of its CPU ops.

mmcv's CPU extension is 77 C++ files, and each one parses the whole of torch's headers again:
about 12 of the ~14 seconds each file takes on one core are parsing, so most of a source build of
mmcv goes into parsing the same headers 77 times. Here the files are grouped into 8 translation
units (each file renamed ``*.inc`` in place, so its relative includes still resolve, and included
by a ``unity_<k>.cpp`` that mmcv's ``setup.py`` globs instead): the op sources are compiled
unchanged, only fewer times the headers.

The groups keep apart the files that define the same helpers (``PreCalc``,
``bilinear_interpolate_gradient``, ...) and put ``psamask.cpp``, which defines ``min`` / ``max``
macros, last in its unit. They are fixed for mmcv 2.1.0 (the pinned version); for anything else,
or a tree without exactly these files, the script changes nothing and says so, and the build
compiles file by file as mmcv ships it.

    python tools/mmcv_unity.py path/to/mmcv-2.1.0
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Units of ``mmcv/ops/csrc/pytorch/cpu`` (file stems), chosen so that no two files of a unit
#: define the same helper.
CPU_UNITS = [
    ["roi_align", "box_iou_rotated", "nms", "active_rotated_filter", "voxelization"],
    ["roi_align_rotated", "nms_rotated", "sparse_maxpool", "bbox_overlaps_cpu", "points_in_boxes"],
    ["bezier_align", "nms_quadri", "sparse_reordering", "box_iou_quadri", "pixel_group",
     "sparse_indice"],
    ["rotated_feature_align", "deform_conv"],
    ["modulated_deform_conv", "psamask"],  # psamask defines min / max macros: last
]
#: The dispatch wrappers of ``mmcv/ops/csrc/pytorch`` go into this many units; ``pybind.cpp``
#: (the heaviest file) stays alone.
WRAPPER_UNITS = 2
EXPECTED = {"version": "2.1.0", "wrappers": 56, "cpu": 20}


def unity(src: Path) -> list[Path]:
    """Rewrite ``src`` (an extracted mmcv source tree); returns the unity files written.

    Raises:
        ValueError: when the tree is not the mmcv this grouping was made for.
    """
    ops = src / "mmcv" / "ops" / "csrc" / "pytorch"
    version = (src / "mmcv" / "version.py").read_text() if (src / "mmcv" / "version.py").is_file() \
        else ""
    wrappers = sorted(p for p in ops.glob("*.cpp") if p.name != "pybind.cpp")
    cpu = {p.stem: p for p in (ops / "cpu").glob("*.cpp")}
    grouped = sorted(stem for unit in CPU_UNITS for stem in unit)
    if (f"__version__ = '{EXPECTED['version']}'" not in version
            or len(wrappers) != EXPECTED["wrappers"] or sorted(cpu) != grouped):
        raise ValueError(f"{src} is not the mmcv {EXPECTED['version']} source tree this grouping "
                         f"was made for ({len(wrappers)} wrappers, {len(cpu)} CPU files)")
    units: list[list[Path]] = [wrappers[i::WRAPPER_UNITS] for i in range(WRAPPER_UNITS)]
    units += [[cpu[stem] for stem in unit] for unit in CPU_UNITS]
    written = []
    for k, files in enumerate(units):
        lines = []
        for path in files:
            inc = path.with_suffix(".inc")
            path.rename(inc)
            lines.append(f'#include "{inc.relative_to(ops).as_posix()}"')
        out = ops / f"unity_{k}.cpp"
        out.write_text("// unity build unit (tools/mmcv_unity.py)\n" + "\n".join(lines) + "\n")
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        files = unity(Path(args[0]))
    except ValueError as err:
        print(f"mmcv_unity: {err}; building file by file", file=sys.stderr)
        return 1
    print(f"mmcv_unity: {len(files)} translation units")
    return 0


if __name__ == "__main__":
    sys.exit(main())
