"""Keys of mmengine's message hub that the models and the engine share (so that neither imports
the other)."""

#: Total skipped optimizer steps of the run (also a logged scalar ``train/skipped_steps``).
SKIPPED_KEY = "skipped_steps"
#: The model's description of the last non-finite loss terms (names and iteration).
TERMS_KEY = "nonfinite_terms"
