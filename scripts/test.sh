#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: unit, end-to-end on the embedded SmolLM2,
# and against a real llama.cpp server started by the tests on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
