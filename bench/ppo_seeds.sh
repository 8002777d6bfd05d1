#!/usr/bin/env bash
# PPO's run-to-run spread: PPO from the same rankings and reward model under several seeds, each evaluated by
# the judge against the reference. A copy of SOURCE (a session holding rankings and a trained reward model)
# per seed, its record reset to before any PPO; one JSON line per seed: PPO's summary and evaluate's result.
# Usage: [PPO_ARGS="--learning-rate 1.5e-4"] [TAG=lr15] bash bench/ppo_seeds.sh SOURCE JUDGE "EVAL_PROMPTS..." SEED...
#   e.g. RLHF_LAB_SESSIONS=/tmp/s bash bench/ppo_seeds.sh loop enthusiastic "16 82" 0 1 2
# EVAL_PROMPTS above the judge's prompt set ask each prompt again (a fresh sample, counted once per prompt).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=$1; JUDGE=$2; EVALS=$3; shift 3
DIR=${RLHF_LAB_SESSIONS:?set RLHF_LAB_SESSIONS to the folder holding $SOURCE}
PY=${PY:-.venv/bin/python}
for SEED in "$@"; do
  S=$SOURCE-ppo${TAG:+-$TAG}-s$SEED
  rm -rf "${DIR:?}/$S"
  cp -r "$DIR/$SOURCE" "$DIR/$S"
  rm -rf "$DIR/$S/adapters/policy" "$DIR/$S/evaluations.jsonl"
  : > "$DIR/$S/metrics.jsonl"
  $PY - "$DIR/$S/session.json" "$S" <<'PY'
import json, sys
path, name = sys.argv[1:]
meta = json.load(open(path))
meta.update(name=name, round=0, policy_version="base", ppo_steps=0, kl_coef=None)
json.dump(meta, open(path, "w"))
PY
  t0=$(date +%s)
  # shellcheck disable=SC2086  # PPO_ARGS is a list of options
  ppo=$($PY -m rlhf_lab ppo --session "$S" --steps 20 --seed "$SEED" ${PPO_ARGS:-} 2>/dev/null | tail -1)
  t1=$(date +%s)
  for N in $EVALS; do
    ev=$($PY -m rlhf_lab evaluate --session "$S" --judge "$JUDGE" --prompts "$N" 2>/dev/null | tail -1)
    echo "{\"seed\": $SEED, \"ppo_args\": \"${PPO_ARGS:-}\", \"ppo_wall_s\": $((t1-t0)), \"ppo\": $ppo, \"evaluate\": $ev}"
  done
done
