#!/usr/bin/env bash
# Fetch here (where pip reaches PyPI) the wheels the GPU machine lacks for bench/gpu_check.sh: its
# image has Python 3.12 with torch, transformers, peft, accelerate, numba..., but not these. They land
# in .whl/ (git-ignored), which the device call names in `carry`.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .whl
for pkg in trl==1.16.0 datasets==5.2.0 bitsandbytes==0.50.2 torchao==0.18.0 liger-kernel cut-cross-entropy \
           dill multiprocess pydantic pydantic-core typing-inspection annotated-types; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --platform any -d .whl "$pkg" || echo "could not fetch $pkg"
done
du -sh .whl
