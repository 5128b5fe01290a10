# The two commands of the README:
#   make demo   set up (if needed) and run the main job on the built-in phantom: S3PET quick, LPET, compare, report
#   make test   set up (if needed) and run the test suite, as CI does (.ci/run)
# Both are idempotent: a second call reuses the environment, the phantom cache and the finished runs.
#
# Environment: the active one if there is one (a venv or a conda env: $VIRTUAL_ENV / $CONDA_PREFIX),
# else ./.venv, created here. `make NEW_ENV=1 ...` ignores an active environment (what CI does).
# torch: the CPU wheel TORCH_CPU where no NVIDIA GPU is visible, TORCH_GPU where one is; an installed
# torch is kept. Override either on the command line, e.g. `make demo TORCH_GPU="torch==2.13.0"`.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup demo test

PYTHON_FOR_VENV ?= python3
VENV ?= .venv
TORCH_CPU ?= torch==2.13.0
TORCH_GPU ?= torch
RESULTS ?= petbench-results
# Extra options for both runs of the demo, e.g. a tiny protocol: RUN_ARGS="-D size=32 --n-train 2 --n-test 1 --n-unpaired 2"
RUN_ARGS ?=

ifeq ($(NEW_ENV),)
ACTIVE_ENV := $(or $(VIRTUAL_ENV),$(CONDA_PREFIX))
endif
ifneq ($(ACTIVE_ENV),)
PY := $(ACTIVE_ENV)/bin/python
else
PY := $(abspath $(VENV))/bin/python
endif
PETBENCH := $(dir $(PY))petbench

# EXTRAS: petbench's optional extras to install, e.g. EXTRAS=test,mlflow (what CI uses)
EXTRAS ?= test
PACKAGES := -e ".[$(EXTRAS)]" -e plugins/s3pet -e plugins/baselines
TEMPLATE := $(wildcard examples/plugin-template/pyproject.toml)
# True when the three packages (and the test extra) are installed from this checkout, not another one.
export INSTALLED_HERE := import os, sys, petbench, petbench_s3pet, petbench_baselines, pytest_timeout; \
  sys.exit(not all(m.__file__.startswith(os.getcwd() + os.sep) for m in (petbench, petbench_s3pet, petbench_baselines)))

help:
	@echo "make demo   set up and run S3PET quick, LPET and compare on the built-in phantom"
	@echo "make test   set up and run the tests (python -m pytest -q -p no:cacheprovider --timeout=900)"
	@echo "environment: $(PY)"

$(VENV)/bin/python:
	$(PYTHON_FOR_VENV) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

# Installs only what is missing: torch first (a bare torch requirement may pull a multi-GB CUDA build),
# then the three packages (and the plugin template the tests load).
setup: $(if $(ACTIVE_ENV),,$(VENV)/bin/python)
	@if ! $(PY) -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then torch="$(TORCH_GPU)"; \
	  else torch="$(TORCH_CPU)"; fi; \
	  echo "installing $$torch"; $(PY) -m pip install --quiet "$$torch"; fi
	@if ! $(PY) -c "$$INSTALLED_HERE" 2>/dev/null; then \
	  echo "installing petbench and its two method plugins"; $(PY) -m pip install --quiet $(PACKAGES); fi
	@if [ -n "$(TEMPLATE)" ] && ! $(PY) -c "import petbench_plugin_template" 2>/dev/null; then \
	  $(PY) -m pip install --quiet -e examples/plugin-template; fi

demo: setup
	$(PETBENCH) run --method s3pet --dataset phantom --preset quick --results $(RESULTS) $(RUN_ARGS)
	$(PETBENCH) run --method lpet --dataset phantom --results $(RESULTS) $(RUN_ARGS)
	$(PETBENCH) compare --dataset phantom --results $(RESULTS)
	$(PETBENCH) report --dataset phantom --results $(RESULTS) --out $(RESULTS)/report.html

test: setup
	$(PETBENCH) --strict-plugins plugins >/dev/null   # every shipped plugin loads (a global option: before the command)
	$(PY) -m pytest -q -p no:cacheprovider --timeout=900
