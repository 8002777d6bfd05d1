"""python -m rlhf_lab <command>: the same operations as the UI, headless. Errors exit 2 with one clear line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields

from .config import ConfigError, GenerationConfig, ModelConfig, PPOConfig, RewardConfig


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="'default' (embedded SmolLM2-135M-Instruct), a Hugging Face id or a local folder")
    p.add_argument("--precision", default="4bit", choices=["4bit", "bf16", "fp32"])
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model folder to run its own code")
    p.add_argument("--sessions-dir", default=None, help="where sessions live (default: ./sessions of the repo)")


def _gen_args(p: argparse.ArgumentParser, k: bool = True) -> None:
    if k:
        p.add_argument("-k", type=int, default=GenerationConfig.k, help="completions per prompt (1-16)")
    p.add_argument("--max-new-tokens", type=int, default=GenerationConfig.max_new_tokens)
    p.add_argument("--temperature", type=float, default=GenerationConfig.temperature)
    p.add_argument("--top-p", type=float, default=GenerationConfig.top_p)
    p.add_argument("--seed", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlhf_lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sessions", help="list sessions")
    p.add_argument("--sessions-dir", default=None)

    p = sub.add_parser("serve", help="launch the web app (same as app.py)")
    _model_args(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--session", default=None)

    p = sub.add_parser("generate", help="print K completions of a prompt, one JSON object per line")
    _model_args(p)
    p.add_argument("--session", required=True)
    p.add_argument("--prompt", required=True)
    _gen_args(p)

    p = sub.add_parser("rank", help="record a ranking of the completions `generate` printed (JSON lines on stdin)")
    _model_args(p)
    p.add_argument("--session", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--order", default=None, help="best first, '=' for ties, e.g. 2>1=3>4")
    p.add_argument("--verdict", default="ranked", choices=["ranked", "all_bad", "skipped"])

    p = sub.add_parser("undo", help="retract the session's most recent ranking")
    p.add_argument("--session", required=True)
    p.add_argument("--sessions-dir", default=None)

    p = sub.add_parser("simulate", help="rank N built-in prompts with a simulated annotator")
    _model_args(p)
    p.add_argument("--session", required=True)
    p.add_argument("--judge", required=True, help="concise, enthusiastic, no_lists, mentions:<word> or module:fn")
    p.add_argument("--prompts", type=int, default=32)
    _gen_args(p)

    p = sub.add_parser("export", help="write the session's preference pairs")
    p.add_argument("--session", required=True)
    p.add_argument("--format", default="trl", choices=["trl"])
    p.add_argument("--out", required=True)
    p.add_argument("--sessions-dir", default=None)

    p = sub.add_parser("import", help="add pairs from a TRL/OpenRLHF preference JSONL file")
    _model_args(p)
    p.add_argument("--session", required=True)
    p.add_argument("--file", required=True)

    p = sub.add_parser("train-rm", help="train the reward model on the session's pairs")
    _model_args(p)
    p.add_argument("--session", required=True)
    for f in fields(RewardConfig):
        if f.name in ("epochs", "learning_rate", "lora_r", "max_seconds", "margin", "center_coef"):
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    p.add_argument("--continue", dest="continue_training", action="store_true",
                   help="start from the saved reward model instead of a fresh one")

    p = sub.add_parser("ppo", help="run N PPO steps against the reward model")
    _model_args(p)
    p.add_argument("--session", required=True)
    p.add_argument("--steps", type=int, default=10)
    for name in ("batch_size", "max_new_tokens", "num_ppo_epochs", "learning_rate", "kl_coef", "target_kl",
                 "kl_estimator", "seed"):
        default = PPOConfig.__dataclass_fields__[name].default
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    p.add_argument("--fixed-kl", action="store_true", help="keep kl_coef fixed (no adaptive controller)")

    p = sub.add_parser("evaluate", help="judge the current policy against the reference on fresh samples")
    _model_args(p)
    p.add_argument("--session", required=True)
    p.add_argument("--judge", required=True)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--seed", type=int, default=1234)
    return parser


def _lab(args, need_model: bool = True):
    from .engine import DEFAULT_SESSIONS, Lab

    sessions_dir = args.sessions_dir or os.environ.get("RLHF_LAB_SESSIONS") or DEFAULT_SESSIONS
    if not need_model:
        return Lab(sessions_dir)
    cfg = ModelConfig(model=args.model, precision=args.precision, trust_remote_code=args.trust_remote_code)
    lab = Lab(sessions_dir, model_cfg=cfg)
    lab.open_session(args.session, create=True)
    return lab


def _print(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _gen_cfg(args) -> GenerationConfig:
    return GenerationConfig(k=getattr(args, "k", GenerationConfig.k), max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature, top_p=args.top_p, seed=args.seed)


def run(args) -> int:
    from .generation import require_prompt
    from .judges import get_judge
    from .preferences import parse_order, read_trl
    from .session import validate_name

    if args.command == "sessions":
        for name in _lab(args, need_model=False).list_sessions():
            print(name)
        return 0
    if args.command == "serve":
        from app import main as serve_main
        return serve_main([a for a in sys.argv[2:]])
    if args.command == "undo":
        from .engine import DEFAULT_SESSIONS
        from .session import Session
        session = Session.open(args.sessions_dir or os.environ.get("RLHF_LAB_SESSIONS") or DEFAULT_SESSIONS,
                               args.session)
        active, _ = session.rankings()
        if not active:
            raise ConfigError("Nothing to undo: this session has no rankings.")
        session.retract(active[-1]["id"])
        _print({"retracted": active[-1]["id"], "prompt": active[-1]["prompt"]})
        return 0
    if args.command == "export":
        from .engine import DEFAULT_SESSIONS
        from .preferences import export_trl, session_pairs
        from .session import Session
        session = Session.open(args.sessions_dir or os.environ.get("RLHF_LAB_SESSIONS") or DEFAULT_SESSIONS,
                               args.session)
        n = export_trl(session_pairs(session.rankings()[0]), args.out)
        _print({"pairs": n, "out": args.out})
        return 0

    # Everything that can be checked without the model is checked before it loads (and before any write).
    gen_cfg = _gen_cfg(args) if args.command in ("generate", "simulate") else None
    validate_name(args.session)
    if args.command == "generate":
        require_prompt(args.prompt)
    if args.command == "import":
        read_trl(args.file)
    if args.command == "simulate":
        get_judge(args.judge)
    if args.command == "rank":
        lines = [json.loads(line) for line in sys.stdin if line.strip()]
        completions = [row["text"] for row in lines]
        truncated = [bool(row.get("truncated", False)) for row in lines]
        ranking = parse_order(args.order, len(completions)) if args.verdict == "ranked" else []
    lab = _lab(args)
    if args.command == "generate":
        for event in lab.generate_stream(args.prompt, gen_cfg):
            if event["done"]:
                for i, text in enumerate(event["texts"]):
                    row = {"index": i, "text": text, "truncated": event["truncated"][i], "seed": event["seed"],
                           "policy": event["policy"]}
                    if event["scores"] is not None:
                        row["reward"] = event["scores"][i]
                    _print(row)
    elif args.command == "rank":
        rec = lab.rank(args.prompt, completions, ranking, verdict=args.verdict, extra={"truncated": truncated})
        _print({"saved": rec["id"], "ranking": rec["ranking"], "verdict": rec["verdict"]})
    elif args.command == "simulate":
        start = time.time()
        for row in lab.simulate(args.judge, args.prompts, gen_cfg, seed=args.seed or 0):
            print(f"[{row['index'] + 1}/{args.prompts}] {row['prompt'][:60]} -> {row['ranking']}",
                  file=sys.stderr, flush=True)
        _print({**lab.counts(), "seconds": round(time.time() - start, 1)})
    elif args.command == "import":
        _print({"imported_pairs": lab.import_pairs(args.file)})
    elif args.command == "train-rm":
        cfg = RewardConfig(epochs=args.epochs, learning_rate=args.learning_rate, lora_r=args.lora_r,
                           max_seconds=args.max_seconds, margin=args.margin, center_coef=args.center_coef,
                           continue_training=args.continue_training)
        summary = None
        for row in lab.train_reward(cfg):
            if row.get("summary"):
                summary = row
            elif "eval/reward_accuracy" in row:
                print(f"epoch {row['epoch']}: held-out accuracy {row['eval/reward_accuracy']:.3f}",
                      file=sys.stderr, flush=True)
        _print({k: summary[k] for k in ("eval/reward_accuracy", "reward/accuracy", "pairs_train", "pairs_eval",
                                        "seconds", "stopped", "step")})
    elif args.command == "ppo":
        cfg = PPOConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                        num_ppo_epochs=args.num_ppo_epochs, learning_rate=args.learning_rate, kl_coef=args.kl_coef,
                        target_kl=args.target_kl, kl_estimator=args.kl_estimator, seed=args.seed,
                        adaptive_kl=not args.fixed_kl)
        rows, summary = [], None
        for row in lab.ppo(args.steps, cfg):
            if row.get("summary"):
                summary = row
                continue
            rows.append(row)
            print(f"step {row['step']}: score {row['objective/scores']:.3f} kl {row['objective/kl']:.3f} "
                  f"kl_coef {row['objective/kl_coef']:.4f} {row['time/step_s']:.1f}s", file=sys.stderr, flush=True)
        keys = ["objective/scores", "objective/kl", "objective/rlhf_reward", "objective/kl_coef", "time/step_s"]
        out = {"steps": summary["steps"], "policy_version": summary.get("policy_version"),
               "stopped": summary["stopped"], "seconds": summary["seconds"]}
        if rows:
            out.update({f"first/{k}": rows[0][k] for k in keys[:3]})
            out.update({f"last/{k}": rows[-1][k] for k in keys})
            out["min_kl"] = min(r["objective/kl"] for r in rows)
            out["median_step_s"] = sorted(r["time/step_s"] for r in rows)[len(rows) // 2]
        _print(out)
    elif args.command == "evaluate":
        result = lab.evaluate(args.judge, args.prompts, seed=args.seed)
        _print({k: v for k, v in result.items() if k != "examples"})
    return 0


def main(argv: list[str] | None = None) -> int:
    from .generation import Stopped
    from .jobs import LabBusy
    from .judges import JudgeError
    from .models import ModelLoadError
    from .preferences import RankingInputError
    from .reward_trainer import NotEnoughPairs
    from .session import SessionError

    args = build_parser().parse_args(argv)
    known = (ConfigError, SessionError, ModelLoadError, JudgeError, RankingInputError, NotEnoughPairs, LabBusy,
             Stopped, FloatingPointError)
    try:
        from .engine import LabError
        return run(args)
    except known + (LabError,) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
