# Two set-up commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision pins: colpali-engine 0.3.18 wants torch>=2.2,<2.14; torchvision 0.28 is torch 2.13's twin.
TORCH_VERSION := 2.13.0
TORCHVISION_VERSION := 0.28.0
TORCH_PIN := torch==$(TORCH_VERSION)
# CPU path: PyTorch's CPU wheels (no CUDA packages). GPU path (`make gpu`): PyPI's Linux wheels are CUDA
# builds; set TORCH_GPU_INDEX=https://download.pytorch.org/whl/cu128 (or cu126 …) for another CUDA.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_GPU_INDEX ?=
STAMP := $(VENV)/.docrag-installed
export UNSTRUCTURED_DISABLE_NOTICE := 1
export DO_NOT_TRACK := true
export SCARF_NO_ANALYTICS := true

.PHONY: demo test lint system-deps test-system-deps venv bench clean gpu doctor notebooks

demo: $(STAMP)
	$(BIN)/docrag route examples
	$(BIN)/python -m docrag.demo examples

# Tests never reach a hub: tests/test_download.py serves its own on 127.0.0.1.
test: export HF_HUB_OFFLINE := 1
test: export TRANSFORMERS_OFFLINE := 1
test: $(STAMP) test-system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# Re-run the notebooks and save their outputs (committed, so they read on the web). EVAL_SET: the labelled
# set notebook 04 evaluates (a folder with corpus/, queries.jsonl, page_labels.tsv; default examples/).
notebooks: export HF_HUB_OFFLINE := 1
notebooks: $(STAMP)
	DOCRAG_EVAL_SET=$(abspath $(or $(EVAL_SET),examples)) $(BIN)/python notebooks/execute.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/router.py --labels ../shared/data/devset/page_labels.tsv --corpus ../shared/data/devset/corpus
	$(BIN)/python benchmarks/render.py --corpus ../shared/data/devset/corpus

# Debian packages: poppler-utils (pdf2image), tesseract-ocr (OCR) and LibreOffice, installed only when missing.
system-deps:
	@missing=""; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@# LibreOffice converts Office and OpenDocument files to PDF (parsers/office.py): core + the three apps.
	@missing=""; \
	for pkg in libreoffice-core libreoffice-writer libreoffice-impress libreoffice-calc; do \
	  if command -v dpkg-query >/dev/null 2>&1; then \
	    dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; \
	  elif ! command -v soffice >/dev/null 2>&1; then missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $$missing; \
	fi

# Tests only: Debian's chromium, which tests/test_serve.py drives with Playwright (never Playwright's own browsers).
test-system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing Debian packages: chromium"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi

# torch first, pinned and CPU-only: a wheel already on this machine (pip's find-links) if there is one, else
# torch+torchvision from PyTorch's CPU index, so pip never pulls a multi-GB CUDA build. Then the package. A
# torchvision that does not import beside the CPU torch (PyPI's CUDA one, pulled by colpali-engine) is
# removed: docrag runs ColPali, ColIdefics3 and ColModernVBert without it (see indexes/colpali_compat.py).
$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-index --no-deps $(TORCH_PIN) 2>/dev/null || \
	  $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)+cpu" "torchvision==$(TORCHVISION_VERSION)+cpu" \
	    --index-url $(TORCH_CPU_INDEX)
	$(BIN)/python -m pip install -q $(TORCH_PIN) -e ".[dev]"
	$(BIN)/python -c "import torchvision" >/dev/null 2>&1 || $(BIN)/python -m pip uninstall -y -q torchvision
	touch $(STAMP)

# GPU path: CUDA torch + the matching torchvision (ColQwen's processors need it) in the same venv.
gpu: $(STAMP)
	$(BIN)/python -m pip uninstall -y -q torch torchvision
	$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)" "torchvision==$(TORCHVISION_VERSION)" \
	  $(if $(TORCH_GPU_INDEX),--index-url $(TORCH_GPU_INDEX))
	$(BIN)/docrag doctor

doctor: $(STAMP)
	$(BIN)/docrag doctor

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
