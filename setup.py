"""Installs the ds2d2_mm plugin (the OpenMMLab stack is set up by tools/setup_env.sh)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


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
    extras_require={"sam3": read_requirements("sam3"), "tests": read_requirements("tests")},
    include_package_data=True,
    zip_safe=False,
)
