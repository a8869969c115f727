"""Fixtures of the dataset tests, defined in ``dataset_fixtures.py`` (importable by the tests)."""

from dataset_fixtures import add_dota_image, dior_root, dota_src  # noqa: F401
