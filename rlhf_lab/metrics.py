"""Metric names (TRL's, so people can read them) and the metric log as a pandas DataFrame."""
from __future__ import annotations

import pandas as pd

# PPO
RLHF_REWARD = "objective/rlhf_reward"        # score - kl_coef * KL: what PPO maximises
SCORES = "objective/scores"                  # reward-model score of the samples
KL = "objective/kl"                          # sequence KL(policy || reference), nats, k3 estimator (>= 0)
KL_K1 = "objective/kl_k1"                    # the same by k1 (unbiased, noisy, can read below 0)
GOLD_SCORES = "objective/gold_scores"        # the session's judge on the same samples (gold vs proxy)
LENGTH = "val/response_length"               # mean answer length in tokens
FINISHED = "val/finished_frac"               # share of answers that ended with EOS
KL_COEF = "objective/kl_coef"                # beta in use this step
ENTROPY = "objective/entropy"                # mean per-token entropy of the policy's samples
NON_SCORE_REWARD = "objective/non_score_reward"  # -kl_coef * KL summed over the sequence
APPROXKL = "policy/approxkl_avg"             # how far one step moved the policy
CLIPFRAC = "policy/clipfrac_avg"             # share of tokens whose ratio was clipped
POLICY_LOSS = "loss/policy_avg"
VALUE_LOSS = "loss/value_avg"
RATIO = "val/ratio"                          # mean new/old probability ratio (1.0 = no change)
VF_CLIPFRAC = "val/clipfrac_avg"
# reward model
RM_LOSS = "reward/loss"
RM_ACCURACY = "reward/accuracy"              # training-batch accuracy
RM_MARGIN = "reward/margin"                  # mean r_chosen - r_rejected
EVAL_RM_ACCURACY = "eval/reward_accuracy"    # held-out accuracy, split by prompt
EVAL_RM_LOSS = "eval/reward_loss"            # held-out Bradley-Terry loss: early stopping watches it
# held-out accuracy with each held-out prompt scored at the epoch the other held-out prompts' loss picks
EVAL_RM_ACCURACY_LOPO = "eval/reward_accuracy_lopo"
RM_LENGTH_R2 = "reward/length_r2"            # share of the reward's variance answer length explains
EVAL_LENGTH_RULE_ACCURACY = "eval/length_rule_accuracy"  # held-out accuracy of "prefer the longer (shorter)"
EVAL_RM_ACCURACY_AGAINST_LENGTH = "eval/reward_accuracy_against_length"  # on held-out pairs that rule gets wrong

PPO_PLOTTED = [RLHF_REWARD, SCORES, KL, KL_COEF, ENTROPY, CLIPFRAC]


def to_frame(rows: list[dict], phase: str | None = None) -> pd.DataFrame:
    """Metric rows (from metrics.jsonl) as a DataFrame, optionally one phase only."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    if phase is not None:
        if "phase" not in df:
            return df.iloc[0:0]
        df = df[df["phase"] == phase]
    return df.reset_index(drop=True)

# DPO (TRL's names; the held-out ones are the same names behind "eval/")
DPO_LOSS = "loss/dpo"                        # -log sigmoid(beta * h) (or IPO's squared loss) on training batches
REWARDS_CHOSEN = "rewards/chosen"            # beta * (log pi - log pi_ref) of the preferred answers
REWARDS_REJECTED = "rewards/rejected"        # the same for the other answers
REWARDS_MARGINS = "rewards/margins"          # mean rewards/chosen - rewards/rejected
REWARDS_ACCURACIES = "rewards/accuracies"    # share of pairs with chosen reward > rejected reward (ties wrong)
LOGPS_CHOSEN = "logps/chosen"                # policy log-prob of the preferred answers (sum, IPO: mean per token)
LOGPS_REJECTED = "logps/rejected"
# SFT
SFT_LOSS = "loss/sft"                        # mean negative log-likelihood per answer token
TOKEN_ACCURACY = "mean_token_accuracy"       # share of answer tokens that are the policy's top choice
DEMO_LOGPS = "logps/demonstrations"          # mean log-likelihood (nats) of a whole demonstration answer


def held_out(name: str) -> str:
    """The held-out twin of a training metric: eval/rewards/accuracies beside rewards/accuracies."""
    return "eval/" + name


EVAL_DPO_ACCURACY = held_out(REWARDS_ACCURACIES)
EVAL_DPO_MARGINS = held_out(REWARDS_MARGINS)
EVAL_DEMO_LOGPS = held_out(DEMO_LOGPS)
