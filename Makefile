# The two set-up commands of the README. Both create .venv if missing and install melos into it,
# torch first (a CPU build by default; override with e.g. `make test TORCH=torch==2.13.0`).
# hearvalidator (HEAR's API check, run by tests/embedding/test_hear.py) and beat-this (the optional
# Beat This! beat tracker of `melos sense`) go in without their dependencies: they pull in
# tensorflow and torchaudio, which melos never needs.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: quickstart test install

quickstart: $(STAMP)
	$(VENV)/bin/melos quickstart

test: $(STAMP)
	$(PY) -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps hearvalidator==2021.0.2
	$(PY) -m pip install --quiet --no-deps beat-this==1.1.0 einops rotary-embedding-torch
	touch $(STAMP)
