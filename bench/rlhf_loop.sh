#!/usr/bin/env bash
# The whole loop from the CLI, timed: simulate (32 prompts x 4) -> train-rm -> ppo --steps 20 -> evaluate.
# Usage: bash bench/rlhf_loop.sh [judge] [session]   (sessions go to $RLHF_LAB_SESSIONS or a temp folder)
set -euo pipefail
cd "$(dirname "$0")/.."
JUDGE=${1:-concise}
SESSION=${2:-loop-$(date +%s)}
export RLHF_LAB_SESSIONS=${RLHF_LAB_SESSIONS:-$(mktemp -d)}
PY=${PY:-.venv/bin/python}
t0=$(date +%s)
$PY -m rlhf_lab simulate --session "$SESSION" --judge "$JUDGE" --prompts 32 -k 4 2>/dev/null
t1=$(date +%s)
$PY -m rlhf_lab train-rm --session "$SESSION" 2>/dev/null
t2=$(date +%s)
$PY -m rlhf_lab ppo --session "$SESSION" --steps 20 2>/dev/null
t3=$(date +%s)
$PY -m rlhf_lab evaluate --session "$SESSION" --judge "$JUDGE" --prompts 16 2>/dev/null
t4=$(date +%s)
echo "{\"simulate_s\": $((t1-t0)), \"train_rm_s\": $((t2-t1)), \"ppo_s\": $((t3-t2)), \"evaluate_s\": $((t4-t3)), \"total_s\": $((t4-t0)), \"sessions\": \"$RLHF_LAB_SESSIONS\", \"session\": \"$SESSION\"}"
