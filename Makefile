# The two set-up commands of the README. Both create .venv if missing and install melos into it,
# torch first (a CPU build by default; override with e.g. `make test TORCH=torch==2.13.0`).
# `make test` also installs Debian's chromium where it can (root with apt-get), for the browser test.
# hearvalidator (HEAR's API check, run by tests/embedding/test_hear.py) and beat-this (the optional
# Beat This! beat tracker of `melos sense`) go in without their dependencies: they pull in
# tensorflow and torchaudio, which melos never needs.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: quickstart test install browser

quickstart: $(STAMP)
	$(VENV)/bin/melos quickstart

test: $(STAMP) browser
	$(PY) -m pytest

# Debian's chromium for the browser test of `melos sense --formats html`, where it can be installed
# (root with apt-get); elsewhere that test is skipped and says why.
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
		  apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
		echo "chromium not installed: the browser test of the SENSE page will be skipped"

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,ray]"
	$(PY) -m pip install --quiet --no-deps hearvalidator==2021.0.2
	$(PY) -m pip install --quiet --no-deps beat-this==1.1.0 einops rotary-embedding-torch
	touch $(STAMP)
