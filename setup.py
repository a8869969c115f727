"""Installs the ds2d2_mm plugin (the OpenMMLab stack is set up by tools/setup_env.sh).

A wheel carries the configs inside the package (``ds2d2_mm/configs``), so that the installed
commands (``ds2d2-train``, ``ds2d2-pipeline``, ...) find the recipes outside a checkout; an
editable install reads them from the checkout's ``configs/``.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent

#: Console commands: the tools a user runs from their own project.
COMMANDS = {
    "ds2d2-train": "ds2d2_mm.cli.train:run",
    "ds2d2-test": "ds2d2_mm.cli.test:run",
    "ds2d2-export-student": "ds2d2_mm.cli.export_student:run",
    "ds2d2-pipeline": "ds2d2_mm.cli.pipeline:run",
    "ds2d2-compare": "ds2d2_mm.cli.compare:run",
    "ds2d2-dior-to-coco": "ds2d2_mm.cli.dior_to_coco:run",
    "ds2d2-dronevehicle-to-coco": "ds2d2_mm.cli.dronevehicle_to_coco:run",
    "ds2d2-split-dota": "ds2d2_mm.cli.split_dota:run",
    "ds2d2-make-synthetic": "ds2d2_mm.cli.make_synthetic:run",
    "ds2d2-band-stats": "ds2d2_mm.cli.band_stats:run",
    "ds2d2-benchmark": "ds2d2_mm.cli.benchmark:run",
    "ds2d2-deploy": "ds2d2_mm.cli.deploy:run",
    "ds2d2-sam3-retention": "ds2d2_mm.cli.sam3_retention:run",
    "ds2d2-export-sam3-trunk": "ds2d2_mm.cli.export_sam3_trunk:run",
    "ds2d2-export-sam3-full": "ds2d2_mm.cli.export_sam3_full:run",
}


class BuildPyWithConfigs(build_py):
    """Copies ``configs/`` into the built package (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False) and (HERE / "configs").is_dir():
            shutil.copytree(HERE / "configs", Path(self.build_lib) / "ds2d2_mm" / "configs",
                            dirs_exist_ok=True)


def read_requirements(name: str) -> list[str]:
    """Requirement names of ``requirements/<name>.txt``, pinned by ``constraints.txt``."""
    pins = {}
    for line in (HERE / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            pkg, version = line.split("==")
            pins[pkg.strip().lower()] = f"{pkg.strip()}=={version.strip()}"
    out = []
    for line in (HERE / "requirements" / f"{name}.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            out.append(pins.get(line.lower(), line))
    return out


setup(
    name="ds2d2_mm",
    version="0.1.0",
    description="Dual-Stream Spectral Decoupling Distillation (DS2D2) for MMDetection / MMRotate",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["ds2d2_mm", "ds2d2_mm.*"]),
    install_requires=read_requirements("runtime") + ["mmcv==2.1.0"],
    extras_require={"sam3": read_requirements("sam3"), "tests": read_requirements("tests"),
                    "deploy": read_requirements("deploy")},
    include_package_data=True,
    zip_safe=False,
    entry_points={"console_scripts": [f"{name} = {target}" for name, target in COMMANDS.items()]},
    cmdclass={"build_py": BuildPyWithConfigs},
)
