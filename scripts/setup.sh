#!/usr/bin/env bash
# Create .venv and install reasoning_gym with its test and Ray extras.
# torch is pinned first to 2.13.0 because an unpinned torch pulls a multi-GB CUDA build
# on machines without a local CPU wheel; pyproject.toml keeps a range so GPU users keep
# their own torch build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,ray]"
echo "reasoning_gym installed in $(pwd)/.venv"
