"""python -m rlhf_lab <command>: a dispatch table over Lab. Errors a person can fix exit 2 with one line."""
from __future__ import annotations

import sys

from ..errors import LabError
from .parser import build_parser


def run(args) -> int:
    from .commands import COMMANDS, precheck

    cards = precheck(args)
    command = COMMANDS[args.command]
    result = command(args, cards) if args.command == "rank" else command(args)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except LabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "run", "build_parser"]
