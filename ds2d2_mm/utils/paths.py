"""Where the shipped configs are: inside an installed wheel, or in the checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def config_root() -> Path:
    """The folder of the shipped configs: ``ds2d2_mm/configs`` in a wheel install, the
    checkout's ``configs/`` in a source or editable install.

    Raises:
        FileNotFoundError: when neither exists.
    """
    for candidate in (PACKAGE / "configs", PACKAGE.parent / "configs"):
        if (candidate / "ds2d2").is_dir():
            return candidate
    raise FileNotFoundError(f"the ds2d2_mm configs are in neither {PACKAGE / 'configs'} nor "
                            f"{PACKAGE.parent / 'configs'}; reinstall the package")


def shipped_config(name: str) -> Path:
    """A shipped config by its path below ``configs/`` (a leading ``configs/`` is accepted)."""
    name = name.removeprefix("configs/")
    return config_root() / name
