#!/usr/bin/env bash
# The corrections measurement of issue 14: every chain, including self-consistency (sc),
# LECO with sampled rethinks (leco-vote; -plain: drafting in sc's plain format), the gated default
# critique, the program critic and the S2A filters (yes/no relevance; the question's own likelihood),
# on GSM-IC-style, SVAMP and sycophancy-style problems with hf:qwen2.5-coder-0.5b (bf16).
# Resumable and incremental: each stage raises --limit, and a rerun only runs what is missing
# (results are keyed by chain and problem), so an interrupted run keeps everything it finished.
# critique-program runs model-written Python in the sandbox (graphs/sandbox.py): opt-in, by naming it.
# Usage: bash benchmarks/eval_corrections.sh [LIMITS] [MODEL] [OUT_PREFIX]
#   LIMITS: comma-separated stages, default 20,50,100,200
set -euo pipefail
cd "$(dirname "$0")/.."
LIMITS="${1:-20,50,100,200}"
MODEL="${2:-hf:qwen2.5-coder-0.5b}"
PREFIX="${3:-benchmarks/results/corrections}"
TAG="${MODEL#*:}"; TAG="${TAG//\//_}"
OPTS=(--model "$MODEL" --seed 0 --concurrency 16 --no-progress --no-plots)
case "$MODEL" in hf:*) OPTS+=(--model-option dtype=bfloat16 --model-option max_batch_size=16) ;; esac
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# one torch thread per process: on a 2-core machine shared with other work, 2 threads oversubscribe
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# cheapest and most informative first: an interrupted stage has the chains that matter most
MATH=critique-program,critique-program-sc,critique-program-vote,s2a-filter-question,s2a-filter,critique,leco-vote-plain,leco-vote,sc,leco,leco-plain,s2a-fewshot,critique-gate,critique-program-revise
for limit in ${LIMITS//,/ }; do
  echo "== stage: --limit $limit ($(date -u +%H:%M:%S))"
  .venv/bin/sc-chains eval --dataset gsm-ic --chains "baseline,oracle,$MATH" --limit "$limit" \
    "${OPTS[@]}" --out "$PREFIX-gsm-ic-$TAG"
  .venv/bin/sc-chains eval --dataset svamp --chains "baseline,$MATH" --limit "$limit" \
    "${OPTS[@]}" --out "$PREFIX-svamp-$TAG"
  .venv/bin/sc-chains eval --dataset sycophancy --chains baseline,oracle,s2a-filter-question,s2a-filter,critique,critique-program,critique-program-sc,leco,critique-gate,sc,leco-vote --limit "$limit" \
    "${OPTS[@]}" --out "$PREFIX-sycophancy-$TAG"
done
