"""What the CLI hands the Lab: run a command against a stand-in Lab that records the config it is given."""
from __future__ import annotations


def config_from_cli(monkeypatch, argv: list[str], summary: dict):
    """The config object the command `argv` passes to its Lab method; the method answers with `summary`."""
    from rlhf_lab.cli import commands
    from rlhf_lab.cli.parser import build_parser

    seen = []

    class StandIn:
        def __getattr__(self, method):
            def run(*args):
                seen.append(args[-1])  # train_reward(cfg), ppo(steps, cfg): the config comes last
                return iter([summary])
            return run

    monkeypatch.setattr(commands, "open_lab", lambda args: StandIn())
    getattr(commands, "cmd_" + argv[0].replace("-", "_"))(build_parser().parse_args(argv))
    return seen[0]
