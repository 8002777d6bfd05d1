"""One function per CLI command, each a thin call into Lab; COMMANDS maps names to them.

Everything that can be checked without the model is checked before it loads (and before anything is
written): `precheck` runs first, then the Lab opens the session.
"""
from __future__ import annotations

import json
import os
import sys
import time

from ..config import GenerationConfig, ModelConfig, PPOConfig, RewardConfig
from ..errors import ConfigError


def emit(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def sessions_dir(args):
    from ..lab import DEFAULT_SESSIONS
    return args.sessions_dir or os.environ.get("RLHF_LAB_SESSIONS") or DEFAULT_SESSIONS


def open_lab(args, with_model: bool = True):
    from ..lab import Lab

    if not with_model:
        lab = Lab(sessions_dir(args))
        lab.open_session(args.session, with_model=False)
        say_notices(lab)
        return lab
    cfg = ModelConfig(model=args.model, precision=args.precision, trust_remote_code=args.trust_remote_code,
                      **system_prompt_arg(args))
    lab = Lab(sessions_dir(args), model_cfg=cfg)
    lab.open_session(args.session, create=True)
    say_notices(lab)
    return lab


def say_notices(lab) -> None:
    """What opening the session repaired (rebuilt metadata, a broken adapter set aside), on stderr."""
    for notice in lab.session.notices:
        print(f"warning: {notice}", file=sys.stderr)


def system_prompt_arg(args) -> dict:
    """--system-prompt as a ModelConfig field: absent keeps the default, 'none' removes it."""
    text = getattr(args, "system_prompt", None)
    if text is None:
        return {}
    return {"system_prompt": None if text.strip().lower() == "none" else text}


def generation_config(args) -> GenerationConfig:
    return GenerationConfig(k=getattr(args, "k", GenerationConfig.k), max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature, top_p=args.top_p, seed=args.seed)


# ---- commands without a model ------------------------------------------------------------------------------
def cmd_sessions(args) -> None:
    from ..lab import Lab
    for name in Lab(sessions_dir(args)).list_sessions():
        print(name)


def cmd_serve(args) -> int:
    from app import main as serve_main
    return serve_main(sys.argv[2:])


def cmd_undo(args) -> None:
    rec = open_lab(args, with_model=False).undo()
    emit({"retracted": rec["id"], "prompt": rec["prompt"]})


def cmd_export(args) -> None:
    n = open_lab(args, with_model=False).export(args.out)
    emit({"pairs": n, "out": args.out})


# ---- commands over the model ---------------------------------------------------------------------------------
def cmd_generate(args) -> None:
    lab = open_lab(args)
    event = lab.generate(args.prompt, generation_config(args))
    for i, text in enumerate(event["texts"]):
        row = {"index": i, "text": text, "truncated": event["truncated"][i], "seed": event["seed"],
               "policy": event["policy"]}
        if event["scores"] is not None:
            row["reward"] = event["scores"][i]
        emit(row)


def read_stdin_cards() -> tuple[list[str], list[bool]]:
    """The cards `generate` printed, as JSON lines on stdin."""
    try:
        lines = [json.loads(line) for line in sys.stdin if line.strip()]
        return [row["text"] for row in lines], [bool(row.get("truncated", False)) for row in lines]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError("stdin must hold the JSON lines `generate` printed (one object with \"text\" per "
                          f"answer); {err}") from err


def cmd_rank(args, cards) -> None:
    completions, truncated, ranking = cards
    rec = open_lab(args).rank(args.prompt, completions, ranking, verdict=args.verdict,
                              extra={"truncated": truncated})
    emit({"saved": rec["id"], "ranking": rec["ranking"], "verdict": rec["verdict"]})


def cmd_simulate(args) -> None:
    lab = open_lab(args)
    start = time.time()
    for row in lab.simulate(args.judge, args.prompts, generation_config(args), seed=args.seed or 0):
        print(f"[{row['index'] + 1}/{args.prompts}] {row['prompt'][:60]} -> {row['ranking']}",
              file=sys.stderr, flush=True)
    emit({**lab.counts(), "seconds": round(time.time() - start, 1)})


def cmd_import(args) -> None:
    count = open_lab(args).import_pairs(args.file)
    emit({"imported_pairs": int(count), "skipped_already_present": count.skipped})


def cmd_train_rm(args) -> None:
    cfg = RewardConfig(epochs=args.epochs, learning_rate=args.learning_rate, lora_r=args.lora_r,
                       max_seconds=args.max_seconds, margin=args.margin, center_coef=args.center_coef,
                       continue_training=args.continue_training)
    summary = None
    for row in open_lab(args).train_reward(cfg):
        if row.get("summary"):
            summary = row
        elif "eval/reward_accuracy" in row:
            print(f"epoch {row['epoch'] + 1}: held-out accuracy {row['eval/reward_accuracy']:.3f} "
                  f"loss {row['eval/reward_loss']:.3f}", file=sys.stderr, flush=True)
        elif "progress" in row:
            print(f"\rstep {row['step']} · {row['progress']:.0%} · loss {row['reward/loss']:.3f} · "
                  f"ETA {row['eta_s']:.0f}s (early stopping may end sooner)   ", end="", file=sys.stderr, flush=True)
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    emit({k: summary.get(k) for k in ("eval/reward_accuracy", "eval/accuracy_ci", "eval/reward_loss",
                                      "reward/accuracy", "reward/length_r2", "pairs_train", "pairs_eval",
                                      "seconds", "stopped", "step")})


def cmd_ppo(args) -> None:
    cfg = PPOConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                    num_ppo_epochs=args.num_ppo_epochs, learning_rate=args.learning_rate, kl_coef=args.kl_coef,
                    target_kl=args.target_kl, kl_estimator=args.kl_estimator, seed=args.seed,
                    adaptive_kl=not args.fixed_kl)
    rows, summary = [], None
    for row in open_lab(args).ppo(args.steps, cfg):
        if row.get("summary"):
            summary = row
            continue
        rows.append(row)
        print(f"step {row['step']}: score {row['objective/scores']:.3f} kl {row['objective/kl']:.3f} "
              f"kl_coef {row['objective/kl_coef']:.4f} {row['time/step_s']:.1f}s", file=sys.stderr, flush=True)
    from ..diagnostics import ppo_warnings
    for warning in ppo_warnings(rows):
        print(f"warning: {warning}", file=sys.stderr)
    keys = ["objective/scores", "objective/kl", "objective/rlhf_reward", "objective/kl_coef", "time/step_s"]
    out = {"steps": summary["steps"], "policy_version": summary.get("policy_version"),
           "stopped": summary["stopped"], "seconds": summary["seconds"]}
    if rows:
        out.update({f"first/{k}": rows[0][k] for k in keys[:3]})
        out.update({f"last/{k}": rows[-1][k] for k in keys})
        out["min_kl"] = min(r["objective/kl"] for r in rows)
        out["min_kl_k1"] = min(r["objective/kl_k1"] for r in rows)
        for k in ("objective/gold_scores", "val/response_length", "val/finished_frac"):
            if k in rows[0]:
                out[f"first/{k}"], out[f"last/{k}"] = rows[0][k], rows[-1][k]
        out["median_step_s"] = sorted(r["time/step_s"] for r in rows)[len(rows) // 2]
    emit(out)


def cmd_evaluate(args) -> None:
    result = open_lab(args).evaluate(args.judge, args.prompts, seed=args.seed, policy=args.policy)
    emit({k: v for k, v in result.items() if k != "examples"})


# ---- checks before any model loads -----------------------------------------------------------------------
def precheck(args):
    """Check what needs no model; returns the parsed stdin cards for `rank`, else None."""
    from ..data.preference_files import read_trl
    from ..data.rankings import parse_order
    from ..data.session import validate_name
    from ..generation.chat import require_prompt
    from ..judges import get_judge

    if hasattr(args, "session") and args.session is not None:
        validate_name(args.session)
    if args.command in ("generate", "simulate"):
        generation_config(args)
    if args.command == "generate":
        require_prompt(args.prompt)
    if args.command == "import":
        read_trl(args.file, on_progress=lambda n, total: print(f"\rchecking {args.file}: line {n} of {total}",
                                                               end="", file=sys.stderr, flush=True))
    if args.command in ("simulate", "evaluate"):
        get_judge(args.judge)
    if args.command == "rank":
        completions, truncated = read_stdin_cards()
        if args.verdict == "ranked" and not completions:
            raise ConfigError("There were no answers on stdin to rank: pipe in what `generate` printed.")
        ranking = parse_order(args.order, len(completions)) if args.verdict == "ranked" else []
        return completions, truncated, ranking
    from .learning import precheck as learning_precheck
    learning_precheck(args)
    return None


COMMANDS = {"sessions": cmd_sessions, "serve": cmd_serve, "undo": cmd_undo, "export": cmd_export,
            "generate": cmd_generate, "rank": cmd_rank, "simulate": cmd_simulate, "import": cmd_import,
            "train-rm": cmd_train_rm, "ppo": cmd_ppo, "evaluate": cmd_evaluate}


def _learning(name: str):
    """A command of cli/learning.py, imported when it runs (that module imports this one's helpers)."""
    def run(args):
        from .learning import COMMANDS as LEARNING
        return LEARNING[name](args)
    return run


COMMANDS.update({name: _learning(name) for name in ("dpo", "sft", "demonstrate", "versions", "export-demonstrations",
                                                    "import-demonstrations")})
