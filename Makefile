# Two commands for a fresh machine:
#   make quickstart   set up, then train the tiny example model and show it answering
#   make test         set up, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.axo-installed

.PHONY: setup quickstart test bench clean

setup: $(STAMP)

# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build. llama.cpp (the
# GGUF export's runtime) next, compiled for a portable instruction set rather than this CPU (see
# src/axo/export/llama_cpp.py: a native build crashes on other machines, and on AMX ones).
$(STAMP): pyproject.toml constraints.txt Makefile src/axo/export/llama_cpp.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	PYTHONPATH=src $(PY) -m axo.export.llama_cpp --build
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	$(PY) tests/fixtures/real_tokenizers.py
	$(PY) -m axo.export.llama_cpp
	touch $(STAMP)

quickstart: setup
	PATH=$(VENV)/bin:$$PATH bash examples/quickstart.sh

test: setup
	$(PY) -m pytest tests -q

clean:
	rm -rf outputs .pytest_cache
