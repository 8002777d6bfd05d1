"""CLI commands for learning without a reward model and for the lineage: dpo, sft, demonstrate, versions,
import-demonstrations, export-demonstrations. Their parsers are added by add_parsers (called by
parser.build_parser); their checks that need no model run in precheck, before any model loads."""
from __future__ import annotations

import sys
from pathlib import Path

from ..config import DPOConfig, SFTConfig
from ..config.dpo import LOSS_TYPES
from ..errors import ConfigError, NoDemonstrations, NotEnoughPairs
from .commands import emit, generation_config, open_lab

JUDGE_HELP = ("the judge that picks the best of K answers (concise, enthusiastic, no_lists, plain_words, "
              "mentions:<word>, ...)")


def add_parsers(sub, parser_module) -> None:
    """The subcommands of this module; `parser_module` lends the shared argument groups."""
    P = parser_module
    p = sub.add_parser("dpo", help="train the policy by DPO on the session's pairs (no reward model)")
    P.model_args(p)
    P.session_arg(p)
    P.config_args(p, DPOConfig, ("epochs", "beta", "learning_rate", "batch_rankings", "seed"))
    p.add_argument("--loss", dest="loss_type", default=DPOConfig.loss_type, choices=LOSS_TYPES,
                   help="sigmoid (DPO) or ipo")

    p = sub.add_parser("sft", help="train the policy on the session's demonstrations")
    P.model_args(p)
    P.session_arg(p)
    P.config_args(p, SFTConfig, ("epochs", "learning_rate", "batch_size", "seed"))

    p = sub.add_parser("demonstrate", help="record the answer you wanted (--prompt and --answer), or let a judge "
                                           "write N demonstrations as the best of K samples (--judge)")
    P.model_args(p)
    P.session_arg(p)
    p.add_argument("--prompt", default=None)
    p.add_argument("--answer", default=None, help="the answer you wanted for --prompt")
    p.add_argument("--judge", default=None, help=JUDGE_HELP)
    p.add_argument("--prompts", type=int, default=16, help="with --judge: how many demonstrations to write")
    P.generation_args(p)

    p = sub.add_parser("versions", help="the lineage of the session's policy versions, as JSON")
    P.session_arg(p)

    p = sub.add_parser("export-demonstrations", help="write the demonstrations as TRL SFT JSONL (conversational)")
    P.session_arg(p)
    p.add_argument("--out", required=True)

    p = sub.add_parser("import-demonstrations", help="add demonstrations from a TRL prompt-completion JSONL file")
    P.session_arg(p)
    p.add_argument("--file", required=True)


def precheck(args) -> None:
    """What can be refused without a model: a missing session, no pairs for DPO, no demonstrations for SFT,
    a demonstration without its prompt or answer, a file that does not parse, an unknown policy version."""
    from ..data import demonstrations as demos
    from ..data.pairs import count_pairs, groups_from_pairs
    from ..judges import get_judge

    command = args.command
    if command == "demonstrate":
        if args.judge is None and not (args.prompt and args.prompt.strip() and args.answer and args.answer.strip()):
            raise ConfigError("Give --prompt and --answer (the answer you wanted), or --judge to let a judge write "
                              "demonstrations.")
        if args.judge is not None:
            get_judge(args.judge)
            generation_config(args)
    if command == "import-demonstrations":
        demos.read_sft(args.file)
    if command in ("dpo", "sft") or (command == "evaluate" and getattr(args, "policy", None)):
        lab = open_lab(args, with_model=False)  # reads the records; refuses a session that does not exist
        if command == "dpo" and count_pairs(groups_from_pairs(lab.pairs())) < 1:
            raise NotEnoughPairs(f"Session {args.session!r} has no preference pairs for DPO: rank some answers "
                                 "first (ties only, 'all bad' and 'skip' give none), or add demonstrations.")
        if command == "sft" and not lab.demonstrations():
            raise NoDemonstrations(f"Session {args.session!r} has no demonstrations for SFT: add some with "
                                   "`demonstrate` or `import-demonstrations`, or write them on the ranking tab.")
        if command == "evaluate":
            from ..lab.lineage import resolve
            resolve(lab, args.policy)


def _train(rows, keys: tuple[str, ...]) -> dict:
    """Print progress on stderr, return the summary row."""
    summary = None
    for row in rows:
        if row.get("summary"):
            summary = row
        elif keys[0] in row:  # a held-out evaluation: before training and after each epoch
            print(f"\nafter step {row['step']}: " + " ".join(f"{k} {row[k]:.3f}" for k in keys), file=sys.stderr,
                  flush=True)
        else:
            print(f"\rstep {row['step']} · {row['progress']:.0%} · ETA {row['eta_s']:.0f}s   ", end="",
                  file=sys.stderr, flush=True)
    return summary


def _summary(summary: dict, keys: tuple[str, ...]) -> dict:
    # held_out False: every prompt was needed for training, so the eval/ numbers are on training data
    out = {k: summary.get(k) for k in ("policy_version", "step", "stopped", "held_out", "seconds")}
    for k in keys:
        out[f"start/{k}"], out[k] = summary.get(f"start/{k}"), summary.get(k)
    return out


DPO_KEYS = ("eval/rewards/accuracies", "eval/rewards/margins", "eval/loss/dpo")
SFT_KEYS = ("eval/logps/demonstrations", "eval/loss/sft", "eval/mean_token_accuracy")


def cmd_dpo(args) -> None:
    cfg = DPOConfig(epochs=args.epochs, beta=args.beta, learning_rate=args.learning_rate, loss_type=args.loss_type,
                    batch_rankings=args.batch_rankings, seed=args.seed)
    summary = _train(open_lab(args).dpo(cfg), DPO_KEYS)
    emit({**_summary(summary, DPO_KEYS), "pairs_train": summary.get("pairs_train"),
          "pairs_eval": summary.get("pairs_eval")})


def cmd_sft(args) -> None:
    cfg = SFTConfig(epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size, seed=args.seed)
    summary = _train(open_lab(args).sft(cfg), SFT_KEYS)
    emit({**_summary(summary, SFT_KEYS), "demonstrations_train": summary.get("demonstrations_train"),
          "demonstrations_eval": summary.get("demonstrations_eval")})


def cmd_demonstrate(args) -> None:
    if args.judge is None:
        from .commands import sessions_dir
        exists = (Path(sessions_dir(args)) / args.session / "session.json").is_file()
        # Writing one needs no model; only a session created by this command loads it (to record its config).
        rec = open_lab(args, with_model=not exists).demonstrate(args.prompt, args.answer)
        emit({"saved": rec["id"], "demonstrations": 1})
        return
    lab, written = open_lab(args), 0
    for row in lab.write_demonstrations(args.judge, args.prompts, generation_config(args), seed=args.seed or 0):
        written += 1
        print(f"[{row['index'] + 1}/{args.prompts}] {row['prompt'][:50]} -> {row['completion'][:60]!r}",
              file=sys.stderr, flush=True)
    if written < args.prompts:
        print(f"warning: {written} of {args.prompts} written: the other prompts had no finished answer among "
              f"{args.k} (raise --max-new-tokens or -k)", file=sys.stderr)
    emit({"written": written, "demonstrations": len(lab.demonstrations()), "pairs": len(lab.pairs())})


def cmd_versions(args) -> None:
    emit(open_lab(args, with_model=False).versions())


def cmd_export_demonstrations(args) -> None:
    emit({"demonstrations": open_lab(args, with_model=False).export_demonstrations(args.out), "out": args.out})


def cmd_import_demonstrations(args) -> None:
    count = open_lab(args, with_model=False).import_demonstrations(args.file)
    emit({"imported_demonstrations": int(count), "skipped_already_present": count.skipped})


COMMANDS = {"dpo": cmd_dpo, "sft": cmd_sft, "demonstrate": cmd_demonstrate, "versions": cmd_versions,
            "export-demonstrations": cmd_export_demonstrations, "import-demonstrations": cmd_import_demonstrations}

__all__ = ["COMMANDS", "add_parsers", "precheck"]
