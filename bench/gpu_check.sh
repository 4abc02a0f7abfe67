#!/usr/bin/env bash
# Every GPU-only check in one run: a session lent a GPU runs this whole file in one device call.
#   bash bench/gpu_check.sh [--only CHECK ...]
# It prints one PASS / FAIL / SKIP line per check (bench/gpu_check.py says what each checks). On a CPU
# the checks that can run there run, the others are skipped with the reason. The GPU machine has no
# network: the packages it lacks travel as wheels in .whl/ (bench/gpu_wheels.sh fetches them here),
# installed into /tmp/site before the checks; axo itself is imported from src/.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  [ -x .venv/bin/python ] && PY=.venv/bin/python  # no GPU here: the project's own environment
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" bench/gpu_check.py "$@"
