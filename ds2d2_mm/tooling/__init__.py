"""Tooling on top of the registered core: the demo pipeline, its report, the comparison
benchmark and the synthetic scene generator.

Nothing here is imported by ``import ds2d2_mm`` (what a user's ``custom_imports`` loads): the
tooling imports the core, never the reverse (``tests/test_package_shape.py`` checks both).

- :mod:`.runs`: ``RunResult`` (one trained model of a recipe), shared by the pipeline, the
  report and the benchmark, so that those never import each other for it;
- :mod:`.pipeline`: the three-stage recipe as one resumable job (``ds2d2-pipeline``);
- :mod:`.report`: the Markdown report and figures of a finished pipeline;
- :mod:`.compare`: the comparison and ablation benchmark (``ds2d2-compare``);
- :mod:`.synthetic`: the built-in synthetic aerial dataset (``ds2d2-make-synthetic``).
"""
