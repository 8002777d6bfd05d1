"""The argument parser of `python -m rlhf_lab`: one subcommand per Lab operation, shared argument groups."""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..config import GenerationConfig, PPOConfig, RewardConfig
from ..config.reward import READOUTS

JUDGE_HELP = ("concise, enthusiastic, no_lists, plain_words, mentions:<word>, or package.module:function "
              "(that module is imported and runs as code: use only your own)")


def sessions_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sessions-dir", default=None,
                   help="where sessions live (default: $RLHF_LAB_SESSIONS, else ./sessions of the repo)")


def session_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", required=True, help="session name (letters, digits, '-', '_')")
    sessions_dir_arg(p)


def model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="'default' (embedded SmolLM2-135M-Instruct), a Hugging Face id or a local folder")
    p.add_argument("--precision", default="4bit", choices=["4bit", "bf16", "fp32"])
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model folder to run its own code")
    p.add_argument("--system-prompt", default=None,
                   help="system message in every prompt (default: ask for one or two short sentences; 'none' keeps "
                        "the model's own); a new session stores it")


def generation_args(p: argparse.ArgumentParser, k: bool = True) -> None:
    if k:
        p.add_argument("-k", type=int, default=GenerationConfig.k, help="completions per prompt (1-16)")
    p.add_argument("--max-new-tokens", type=int, default=GenerationConfig.max_new_tokens)
    p.add_argument("--temperature", type=float, default=GenerationConfig.temperature)
    p.add_argument("--top-p", type=float, default=GenerationConfig.top_p)
    p.add_argument("--seed", type=int, default=None)


def config_args(p: argparse.ArgumentParser, cls, names: tuple[str, ...]) -> None:
    """--flag per config field, default and type taken from the dataclass."""
    for f in fields(cls):
        if f.name in names:
            kind = float if f.default is None else type(f.default)  # optional numbers default to None
            p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)


def prompt_set_arg(p) -> None:
    from ..data.prompts import set_names
    p.add_argument("--prompt-set", default=None, choices=set_names(),
                   help="where the prompts come from (default: the judge's scenario set, e.g. cheerful for "
                        "enthusiastic; 'general' for the built-in set)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlhf_lab",
                                     description="The same operations as the web app, headless. Errors exit 2 "
                                                 "with one line that says what was wrong.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sessions", help="list sessions")
    sessions_dir_arg(p)

    p = sub.add_parser("serve", help="launch the web app (same as app.py)")
    model_args(p)
    sessions_dir_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--session", default=None)

    p = sub.add_parser("generate", help="print K completions of a prompt, one JSON object per line")
    model_args(p)
    session_arg(p)
    p.add_argument("--prompt", required=True)
    generation_args(p)

    p = sub.add_parser("rank", help="record a ranking of the completions `generate` printed (JSON lines on stdin)")
    model_args(p)
    session_arg(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("--order", default=None, help="best first, '=' for ties, e.g. 2>1=3>4")
    p.add_argument("--verdict", default="ranked", choices=["ranked", "all_bad", "skipped"])

    p = sub.add_parser("undo", help="retract the session's most recent ranking")
    session_arg(p)

    p = sub.add_parser("simulate", help="rank N prompts (the judge's prompt set) with a simulated annotator")
    model_args(p)
    session_arg(p)
    p.add_argument("--judge", required=True, help=JUDGE_HELP)
    p.add_argument("--prompts", type=int, default=32)
    prompt_set_arg(p)
    generation_args(p)

    p = sub.add_parser("export", help="write the hand-off bundle (data, adapters, merged models, LAUNCH.md) "
                                      "to a new folder, or one preference file")
    session_arg(p)
    p.add_argument("--format", default="bundle", choices=["bundle", "trl", "trl-plain", "hh-rlhf"],
                   help="bundle: a folder for TRL / OpenRLHF / veRL (see its LAUNCH.md); trl: one conversational "
                        "preference JSONL file; trl-plain: plain strings (no chat template); hh-rlhf: HH text")
    p.add_argument("--out", required=True, help="a new (or empty) folder for the bundle, else a file")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="weights of the merged models")

    p = sub.add_parser("import", help="add pairs from a preference JSONL file: TRL / OpenRLHF (plain or "
                                      "conversational) or HH-RLHF")
    model_args(p)
    session_arg(p)
    p.add_argument("--file", required=True)

    p = sub.add_parser("train-rm", help="train the reward model on the session's pairs")
    model_args(p)
    session_arg(p)
    config_args(p, RewardConfig, ("epochs", "learning_rate", "lora_r", "max_seconds", "margin", "center_coef",
                                  "seed"))
    p.add_argument("--readout", default=RewardConfig.readout, choices=READOUTS,
                   help="where the reward head reads an answer: the mean over its tokens and its end token "
                        "(default), the mean only (word choice wherever it stands; cannot tell a finished answer from a "
                        "cut one), or the end token only (the only one exportable as a *ForSequenceClassification "
                        "reward model)")
    p.add_argument("--continue", dest="continue_training", action="store_true",
                   help="start from the saved reward model instead of a fresh one")

    p = sub.add_parser("ppo", help="run N PPO steps against the reward model")
    model_args(p)
    session_arg(p)
    p.add_argument("--steps", type=int, default=10)
    config_args(p, PPOConfig, ("batch_size", "max_new_tokens", "num_ppo_epochs", "learning_rate", "kl_coef",
                               "target_kl", "max_kl", "kl_horizon", "kl_estimator", "seed", "samples_per_prompt"))
    p.add_argument("--fixed-kl", action="store_true", help="keep kl_coef fixed (no adaptive controller)")
    p.add_argument("--no-score-baseline", action="store_true",
                   help="reward the raw score (no leave-one-out baseline subtracted)")

    p = sub.add_parser("evaluate", help="judge a policy version (default: the newest) against the reference on "
                                        "fresh samples")
    model_args(p)
    session_arg(p)
    p.add_argument("--judge", required=True, help=JUDGE_HELP)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--seed", type=int, default=1234)
    prompt_set_arg(p)
    p.add_argument("--policy", default=None, help="the policy version to judge, vNNN or base (default: the newest)")

    p = sub.add_parser("report", help="write the session's run report: one self-contained HTML file")
    session_arg(p)
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, default=0,
                   help="first sample fresh before/after answers for N prompts (loads the model); 0 uses the "
                        "latest `evaluate`")
    model_args(p)

    p = sub.add_parser("pack", help="zip a session (records, metrics, adapters, sha256 manifest) to share it")
    session_arg(p)
    p.add_argument("--out", required=True)

    p = sub.add_parser("unpack", help="add a packed session (checked; never over an existing session)")
    sessions_dir_arg(p)
    p.add_argument("--in", dest="inp", metavar="ZIP", required=True, help="the zip `pack` wrote")
    p.add_argument("--as", dest="as_name", metavar="NAME", default=None,
                   help="session name to use (default: the packed one)")

    from ..scenarios import names
    p = sub.add_parser("scenario", help="apply a workshop scenario to the session (prints its settings); with "
                                        "--run, run its whole loop: autopilot -> train-rm -> dpo -> evaluate")
    model_args(p)
    session_arg(p)
    p.add_argument("--name", required=True, choices=names())
    p.add_argument("--run", action="store_true", help="run the whole loop (minutes); one JSON line at the end")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("arena", help="blind A/B matches between policy versions voted by a judge, and the "
                                     "Bradley-Terry leaderboard (without --judge: the leaderboard of the stored votes)")
    model_args(p)
    session_arg(p)
    p.add_argument("--judge", default=None, help=JUDGE_HELP + "; 'human' or none: no voting, the leaderboard only")
    p.add_argument("--versions", default=None, help="versions to compare, comma-separated, e.g. base,v001 "
                                                    "(default: every version of the session)")
    p.add_argument("--prompts", type=int, default=16,
                   help="matches the judge votes on (one prompt each, from the judge's prompt set)")
    p.add_argument("--annotator", default=None, help="the leaderboard counts only these votes: human, judge:<name> "
                                                     "or all (default: the judge's, else all)")
    p.add_argument("--rounds", type=int, default=None, help="bootstrap resamples for the 95%% intervals "
                                                             "(100-10000, default 200)")
    generation_args(p, k=False)

    import sys
    from . import learning  # dpo, sft, demonstrate, versions, demonstrations in and out
    learning.add_parsers(sub, sys.modules[__name__])
    return parser
