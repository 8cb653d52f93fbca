# Two set-up commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.docrag-installed
export UNSTRUCTURED_DISABLE_NOTICE := 1
export DO_NOT_TRACK := true
export SCARF_NO_ANALYTICS := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint system-deps venv bench clean

demo: $(STAMP)
	$(BIN)/docrag route examples
	$(BIN)/python -m docrag.demo examples

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/router.py --labels ../shared/data/devset/page_labels.tsv --corpus ../shared/data/devset/corpus
	$(BIN)/python benchmarks/render.py --corpus ../shared/data/devset/corpus

# Debian packages: poppler-utils (pdf2image) and tesseract-ocr (OCR), installed only when missing.
system-deps:
	@missing=""; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# torch first, pinned, so pip takes the local CPU build instead of a multi-GB CUDA one; then the package.
# PyPI's torchvision (pulled by colpali-engine) fails to import beside the CPU torch: remove it then
# (docrag runs ColPali and ColIdefics3 without it; see docs in indexes/).
$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q $(TORCH_PIN) -e ".[dev]"
	$(BIN)/python -c "import torchvision" >/dev/null 2>&1 || $(BIN)/python -m pip uninstall -y -q torchvision
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
