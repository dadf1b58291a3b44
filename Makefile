# blockfuse — everything a fresh machine needs comes from PyPI into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all venv test test-slow demo bench synth-engine build clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n auto -q

test-slow: $(STAMP)
	$(PY) -m pytest -n auto -q -m slow

demo: $(STAMP)
	$(VENV)/bin/blockfuse demo --model zoo:vgg16 --resolution 32 --until pool5

bench: $(STAMP)
	$(VENV)/bin/blockfuse bench

BOARD ?= ulx3s-85f
synth-engine: $(STAMP)
	$(VENV)/bin/blockfuse synth-engine --board $(BOARD)

build: $(STAMP)
	$(VENV)/bin/blockfuse build --board $(BOARD)

clean:
	rm -rf $(VENV) build .pytest_cache
