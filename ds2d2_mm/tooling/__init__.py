"""Tooling on top of the registered core: benchmarks that train and compare many runs.

Nothing here is imported by ``import ds2d2_mm`` (what a user's ``custom_imports`` loads): the
tooling imports the core, never the reverse.
"""
