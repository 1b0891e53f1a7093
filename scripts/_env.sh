# Sourced by scripts/test and scripts/demo: makes sure .venv exists and holds
# qode (built from this checkout) and everything its tests and demos need.
# Safe to run again: pip skips what is already satisfied.
set -euo pipefail
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The CPU build of PyTorch first: an unpinned `torch` requirement with no torch
# installed would pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
# Build and install qode itself (the C extension included) with test extras.
python -m pip install -q ".[test]"
