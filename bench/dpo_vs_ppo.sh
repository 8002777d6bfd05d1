#!/usr/bin/env bash
# The same rankings through reward model + PPO and through DPO, each judged on fresh samples; one table row each.
# simulate (32 prompts x 4) once, copy the session (rankings only), then train-rm + ppo on one copy and dpo on
# the other, evaluate both against the reference with the same judge, prompts and seeds.
# Usage: bash bench/dpo_vs_ppo.sh [judge] [prompts] [ppo steps]   (sessions go to $RLHF_LAB_SESSIONS or a temp folder;
# EVAL_PROMPTS=16 sets how many prompts evaluate judges)
# Slow on a CPU (the PPO half alone takes ~7 minutes on the 2-core machine): run it where nothing else runs.
set -euo pipefail
cd "$(dirname "$0")/.."
JUDGE=${1:-concise}
PROMPTS=${2:-32}
STEPS=${3:-20}
BASE=cmp-$JUDGE-$(date +%s)
export RLHF_LAB_SESSIONS=${RLHF_LAB_SESSIONS:-$(mktemp -d)}
EVAL_PROMPTS=${EVAL_PROMPTS:-16}
PY=${PY:-.venv/bin/python}
LOG=$RLHF_LAB_SESSIONS/$BASE.log
: > "$LOG"

t0=$(date +%s)
$PY -m rlhf_lab simulate --session "$BASE-ppo" --judge "$JUDGE" --prompts "$PROMPTS" -k 4 2>>"$LOG" >/dev/null
cp -r "$RLHF_LAB_SESSIONS/$BASE-ppo" "$RLHF_LAB_SESSIONS/$BASE-dpo"   # the same rankings, nothing trained yet
t1=$(date +%s)
$PY -m rlhf_lab train-rm --session "$BASE-ppo" 2>>"$LOG" > "$RLHF_LAB_SESSIONS/$BASE-rm.json"
$PY -m rlhf_lab ppo --session "$BASE-ppo" --steps "$STEPS" 2>>"$LOG" >/dev/null
t2=$(date +%s)
$PY -m rlhf_lab dpo --session "$BASE-dpo" 2>>"$LOG" > "$RLHF_LAB_SESSIONS/$BASE-dpo.json"
t3=$(date +%s)
$PY -m rlhf_lab evaluate --session "$BASE-ppo" --judge "$JUDGE" --prompts "$EVAL_PROMPTS" 2>>"$LOG" > "$RLHF_LAB_SESSIONS/$BASE-ppo-eval.json"
$PY -m rlhf_lab evaluate --session "$BASE-dpo" --judge "$JUDGE" --prompts "$EVAL_PROMPTS" 2>>"$LOG" > "$RLHF_LAB_SESSIONS/$BASE-dpo-eval.json"

# One row per method: training wall time (train-rm + ppo, or dpo), the judge's score of policy and reference on
# the same prompts and seeds, KL to the reference (k3, nats), answer length (tokens) and share finished.
$PY - "$RLHF_LAB_SESSIONS/$BASE" "$JUDGE" "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))" <<'PYEOF'
import json, sys
base, judge, simulate_s, ppo_s, dpo_s = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
print(f"judge {judge}, simulate {simulate_s} s; sessions {base}-ppo and {base}-dpo")
print("| method | train s | policy score | reference score | KL (k3) | length | finished |")
print("|---|---|---|---|---|---|---|")
for name, seconds in (("rm+ppo", ppo_s), ("dpo", dpo_s)):
    e = json.load(open(f"{base}-{name.split('+')[-1]}-eval.json"))
    print(f"| {name} ({e['policy']}) | {seconds} | {e['policy_score']:.2f} | {e['reference_score']:.2f} | "
          f"{e['kl_k3']:.2f} | {e['policy_length']:.1f} | {e['policy_finished']:.0%} |")
print(json.dumps({"dpo": json.load(open(f"{base}-dpo.json")), "reward_model": json.load(open(f"{base}-rm.json"))}))
PYEOF
