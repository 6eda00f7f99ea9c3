# Quick start: `make demo` and `make test`. Both set up what is missing first:
# the active virtual/conda environment is used if there is one, else .venv is
# created; requirements.txt and then the project itself (editable, `pip install -e .`) are
# (re)installed whenever requirements.txt or pyproject.toml changed.
ENV_DIR := $(or $(VIRTUAL_ENV),$(CONDA_PREFIX),$(CURDIR)/.venv)
PYTHON := $(ENV_DIR)/bin/python
STAMP := $(ENV_DIR)/.diff-requirements.sha256
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# GPU check: the system python3 with its own CUDA torch (no venv, no package index); missing
# small packages come from the wheels that `make gpu-wheels` downloads (run where PyPI is).
GPU_PYTHON ?= python3
GPU_WHEELS ?= .gpu-wheels

.PHONY: setup demo test gpu-check gpu-wheels

setup:
	@if [ ! -x "$(PYTHON)" ]; then \
		echo "creating $(ENV_DIR)"; \
		(command -v python3.11 >/dev/null && python3.11 -m venv "$(ENV_DIR)") || python3 -m venv "$(ENV_DIR)"; \
	fi
	@want=$$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1); \
	if [ "$$(cat "$(STAMP)" 2>/dev/null)" != "$$want" ]; then \
		echo "installing requirements.txt and the project (editable) into $(ENV_DIR)"; \
		"$(PYTHON)" -m pip install --disable-pip-version-check -q -r requirements.txt && \
		"$(PYTHON)" -m pip install --disable-pip-version-check -q --no-deps -e . && \
		echo "$$want" > "$(STAMP)"; \
	fi

demo: setup
	$(OFFLINE) "$(PYTHON)" run_experiments.py --exp 0

test: setup
	$(OFFLINE) "$(PYTHON)" -m pytest -q

gpu-check:
	$(OFFLINE) $(GPU_PYTHON) tools/gpu_check.py --wheels $(GPU_WHEELS)

gpu-wheels:
	python3 tools/gpu_check.py --download $(GPU_WHEELS)
