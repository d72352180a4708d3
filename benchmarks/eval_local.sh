#!/usr/bin/env bash
# The committed evaluation run (issue 7): every chain on 50 GSM-IC-style and 50 SVAMP problems
# with the best bundled model, Qwen2.5-Coder-0.5B-Instruct (`hf:qwen2.5-coder-0.5b`; install it
# with SC_CHAINS_WITH_QWEN=1 bash scripts/setup.sh). Default chain configs (512 tokens a call).
# bf16 weights and coalesced batches of up to 16 concurrent calls make it fit a CPU budget:
# on a 2-core AVX512-BF16 CPU bf16 decodes 3.5x faster than fp32 and a batch of 16 ~8x faster
# than one call at a time. Resumable: rerun the script to finish an interrupted run.
# Usage: bash benchmarks/eval_local.sh [LIMIT] [MODEL] [OUT_PREFIX]
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${1:-50}"
MODEL="${2:-hf:qwen2.5-coder-0.5b}"
PREFIX="${3:-benchmarks/results/eval}"
TAG="${MODEL#*:}"; TAG="${TAG//\//_}"
OPTS=(--model "$MODEL" --limit "$LIMIT" --seed 0 --concurrency 16 --no-progress)
case "$MODEL" in hf:*) OPTS+=(--model-option dtype=bfloat16 --model-option max_batch_size=16) ;; esac
export HF_HUB_OFFLINE=1
.venv/bin/sc-chains eval --dataset gsm-ic --chains baseline,oracle,s2a,leco,critique,s2a+leco \
  "${OPTS[@]}" --out "$PREFIX-gsm-ic-$TAG"
.venv/bin/sc-chains eval --dataset svamp --chains baseline,s2a,leco,critique,s2a+leco \
  "${OPTS[@]}" --out "$PREFIX-svamp-$TAG"
