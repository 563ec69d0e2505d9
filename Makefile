# The two commands of the README. Both work on a machine that has only Python 3.10+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export SDL_VIDEODRIVER ?= dummy
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: run test install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned before the project install: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 || $(BIN)/python -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## make run: install everything and build the default pipeline (dvc repro)
run: install
	PATH=$(abspath $(BIN)):$$PATH WM_PIPELINE_RUN=$$(date -u +%Y%m%dT%H%M%SZ) $(BIN)/dvc repro

## make test: install everything and run the test suite
test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest
