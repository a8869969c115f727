# Newcomer entry points. Each target sets up or updates .venv first (idempotent, seconds when
# nothing changed), then runs its job.
PY := .venv/bin/python
PYTEST_ARGS ?=
# test workers: one per core (pytest-xdist); a test file stays on one worker
JOBS ?= auto

.PHONY: env test test-fast demo lint clean-env

env:
	bash tools/setup_env.sh

test: env
	$(PY) -m ruff check ds2d2_mm tools tests configs
	$(PY) -m pytest -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

test-fast: env
	$(PY) -m pytest -n $(JOBS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

demo: env
	$(PY) tools/pipeline.py --preset demo

lint: env
	$(PY) -m ruff check ds2d2_mm tools tests configs

clean-env:
	rm -rf .venv
