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
from ..data.prompts import prompt_set
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
    lab = open_lab(args, with_model=False)
    if args.format != "bundle":
        emit({"pairs": lab.export(args.out, args.format), "out": args.out, "format": args.format})
        return
    result = lab.export_bundle(args.out, args.dtype)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    emit({"out": result["out"], "pairs": result["files"]["preferences.jsonl"] or 0, "files": result["files"],
          "models": sorted(result["models"]), "reward_bias_dropped": result["bias"], "pad_token": result["pad_token"]})


def cmd_pack(args) -> None:
    emit(open_lab(args, with_model=False).pack(args.out))


def cmd_unpack(args) -> None:
    from ..lab import Lab
    emit(Lab(sessions_dir(args)).unpack(args.inp, args.as_name))


def cmd_report(args) -> None:
    lab = open_lab(args, with_model=False)  # a session that does not exist is refused, not created
    if args.samples:
        lab = open_lab(args)  # the model and the session's adapters, to sample from
    emit(lab.report(args.out, samples=args.samples))


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


def prompt_set_arg(args) -> list[str] | None:
    return list(prompt_set(args.prompt_set)) if getattr(args, "prompt_set", None) else None


def cmd_simulate(args) -> None:
    lab = open_lab(args)
    start = time.time()
    for row in lab.simulate(args.judge, args.prompts, generation_config(args), seed=args.seed or 0,
                            prompts=prompt_set_arg(args)):
        if row.get("summary"):
            continue
        print(f"[{row['index'] + 1}/{args.prompts}] {row['prompt'][:60]} -> {row['ranking']}",
              file=sys.stderr, flush=True)
    emit({**lab.counts(), "seconds": round(time.time() - start, 1)})


def cmd_import(args) -> None:
    count = open_lab(args).import_pairs(args.file)
    emit({"imported_pairs": int(count), "skipped_already_present": count.skipped})


def cmd_train_rm(args) -> None:
    cfg = RewardConfig(epochs=args.epochs, learning_rate=args.learning_rate, lora_r=args.lora_r,
                       max_seconds=args.max_seconds, margin=args.margin, center_coef=args.center_coef,
                       continue_training=args.continue_training, readout=args.readout, seed=args.seed)
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
    emit({k: summary.get(k) for k in ("eval/reward_accuracy", "eval/accuracy_ci", "eval/reward_accuracy_lopo",
                                      "eval/reward_loss",
                                      "reward/accuracy", "reward/length_r2", "eval/length_rule_accuracy",
                                      "length_rule", "eval/reward_accuracy_against_length", "pairs_against_length",
                                      "pairs_train", "pairs_eval", "readout",
                                      "seconds", "stopped", "epochs", "step")})


def cmd_ppo(args) -> None:
    cfg = PPOConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                    num_ppo_epochs=args.num_ppo_epochs, learning_rate=args.learning_rate, kl_coef=args.kl_coef,
                    target_kl=args.target_kl, max_kl=args.max_kl, kl_horizon=args.kl_horizon,
                    kl_estimator=args.kl_estimator, seed=args.seed, adaptive_kl=not args.fixed_kl,
                    samples_per_prompt=args.samples_per_prompt, score_baseline=not args.no_score_baseline)
    rows, summary = [], None
    for row in open_lab(args).ppo(args.steps, cfg):
        if row.get("summary"):
            summary = row
            continue
        rows.append(row)
        print(f"step {row['step']}: score {row['objective/scores']:.3f} kl {row['objective/kl']:.3f} "
              f"kl_coef {row['objective/kl_coef']:.4f} {row['time/step_s']:.1f}s", file=sys.stderr, flush=True)
    if summary.get("message"):
        print(f"PPO {summary['message']}", file=sys.stderr)
    from ..diagnostics import ppo_warnings
    for warning in ppo_warnings(rows):
        print(f"warning: {warning}", file=sys.stderr)
    keys = ["objective/scores", "objective/kl", "objective/rlhf_reward", "objective/kl_coef", "time/step_s"]
    out = {"steps": summary["steps"], "policy_version": summary.get("policy_version"),
           "stopped": summary["stopped"], "seconds": summary["seconds"]}
    if "kl_limit" in summary:
        out.update(kl_limit=summary["kl_limit"], kl_past_limit=summary["kl_past_limit"], undone=summary["undone"])
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
    lab = open_lab(args)
    result = lab.evaluate(args.judge, args.prompts, seed=args.seed, policy=args.policy, pool=prompt_set_arg(args))
    emit({k: v for k, v in result.items() if k != "examples"})


def cmd_scenario(args) -> None:
    from dataclasses import asdict

    if not args.run:
        scenario = open_lab(args, with_model=False).use_scenario(args.name)
        emit({**asdict(scenario), "prompts": len(scenario.prompts() or [])})
        return
    for row in open_lab(args).run_scenario(args.name, seed=args.seed):
        stage = row.get("stage")
        if stage is None:
            emit(row)
        elif stage == "autopilot" and "index" in row:
            print(f"autopilot {row['index'] + 1}: {row['prompt'][:60]} -> {row['ranking']}", file=sys.stderr,
                  flush=True)
        elif stage == "reward" and row.get("summary"):
            for warning in row.get("warnings") or []:
                print(f"warning: reward model: {warning}", file=sys.stderr, flush=True)
        elif "eval/reward_accuracy" in row and not row.get("summary"):
            print(f"reward model epoch {row['epoch'] + 1}: held-out accuracy {row['eval/reward_accuracy']:.3f}",
                  file=sys.stderr, flush=True)
        elif "objective/kl" in row:
            print(f"{stage} step {row['step']}: score {row['objective/scores']:.3f} kl {row['objective/kl']:.3f}",
                  file=sys.stderr, flush=True)
        elif "loss/dpo" in row:
            print(f"{stage} step {row['step']}: loss {row['loss/dpo']:.3f} margin {row['rewards/margins']:.3f}",
                  file=sys.stderr, flush=True)


def versions_arg(args) -> list[str] | None:
    """--versions base,v001 as a list (None: every version of the session)."""
    if not args.versions:
        return None
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    if len(set(versions)) < 2:
        raise ConfigError(f"--versions needs at least two different versions separated by commas, e.g. base,v001; "
                          f"got {args.versions!r}.")
    return versions


def cmd_arena(args) -> None:
    """With a judge: it votes on --prompts blind matches, then the leaderboard of its votes. Without one (or with
    --judge human): the leaderboard of the stored votes, no model loaded."""
    import random

    seed = args.seed if args.seed is not None else random.randrange(2**31)
    if args.judge in (None, "human"):
        lab = open_lab(args, with_model=False)
        annotator = args.annotator or args.judge
    else:
        lab = open_lab(args)
        for row in lab.run_arena(args.judge, versions_arg(args), args.prompts, generation_config(args), seed=seed):
            if not row.get("summary"):
                print(f"[{row['votes']}/{args.prompts}] votes ({' vs '.join(row['pair'])}), about "
                      f"{row['eta_s']:.0f}s left", file=sys.stderr, flush=True)
        annotator = args.annotator or f"judge:{args.judge}"
    result = lab.leaderboard(annotator, rounds=args.rounds)
    for line in result["warnings"] + result["advice"]:
        print(f"note: {line}", file=sys.stderr)
    emit({"leaderboard": result["leaderboard"], "votes": result["votes"], "annotator": result["annotator"],
          "length_coef": result["length_coef"], "win_rate": result["win_rate"], "advice": result["advice"],
          **({"seed": seed} if args.judge not in (None, "human") else {})})


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
    if getattr(args, "as_name", None) is not None:
        validate_name(args.as_name)
    if args.command in ("generate", "simulate", "arena"):
        generation_config(args)
    if args.command == "generate":
        require_prompt(args.prompt)
    if args.command == "import":
        read_trl(args.file, on_progress=lambda n, total: print(f"\rchecking {args.file}: line {n} of {total}",
                                                               end="", file=sys.stderr, flush=True))
    if args.command in ("simulate", "evaluate") or (args.command == "arena" and args.judge not in (None, "human")):
        get_judge(args.judge)
    if args.command == "scenario":
        from ..scenarios import get
        get(args.name)
    if args.command == "arena":
        versions_arg(args)
        if not 1 <= args.prompts <= 10000:
            raise ConfigError(f"--prompts must be between 1 and 10000, not {args.prompts}")
        if args.rounds is not None and not 100 <= args.rounds <= 10000:  # before minutes of judging, not after
            raise ConfigError(f"--rounds must be between 100 and 10000, not {args.rounds}")
    if args.command == "report":
        from pathlib import Path
        if not Path(args.out).parent.is_dir():
            raise ConfigError(f"Folder {Path(args.out).parent} does not exist; the report was not written.")
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
            "train-rm": cmd_train_rm, "ppo": cmd_ppo, "evaluate": cmd_evaluate,
            "scenario": cmd_scenario, "pack": cmd_pack, "unpack": cmd_unpack, "report": cmd_report,
            "arena": cmd_arena}


def _learning(name: str):
    """A command of cli/learning.py, imported when it runs (that module imports this one's helpers)."""
    def run(args):
        from .learning import COMMANDS as LEARNING
        return LEARNING[name](args)
    return run


COMMANDS.update({name: _learning(name) for name in ("dpo", "sft", "demonstrate", "versions", "export-demonstrations",
                                                    "import-demonstrations")})
