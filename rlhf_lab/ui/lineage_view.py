"""The lineage of policy versions in words and as a table, for the Session, DPO and SFT tabs."""
from __future__ import annotations

from .. import metrics as M

NAMES = {"sft": "SFT", "ppo": "PPO", "dpo": "DPO"}


def _data(row: dict) -> str:
    data = row.get("data") or {}
    parts = [f"{data[k]} {k.replace('_', ' ')}" for k in ("rankings", "pairs", "demonstrations") if data.get(k)]
    return ", ".join(parts) or "—"


def lineage_markdown(lab) -> str:
    """A table of every policy version: what made it, from which version, on what data; ← marks the current."""
    rows = lab.versions()
    if len(rows) == 1:
        return "Policy lineage: only `base` so far (train with SFT, PPO or DPO to make `v001`)."
    lines = ["| version | made by | from | round | data |", "|---|---|---|---|---|"]
    for row in rows:
        mark = " ← current" if row["current"] else ""
        lines.append(f"| `{row['version']}`{mark} | {NAMES.get(row['algorithm'], '—')} | "
                     f"{row['parent'] and '`' + row['parent'] + '`' or '—'} | {row['round']} | {_data(row)} |")
    return "**Policy lineage**\n\n" + "\n".join(lines)


def _before_after(summary: dict, key: str, fmt: str) -> str:
    start, end = summary.get(f"start/{key}"), summary.get(key)
    return "—" if start is None or end is None else f"{format(start, fmt)} → {format(end, fmt)}"


def last_run_text(lab, algorithm: str) -> str:
    """What the newest version made by `algorithm` changed on held-out data, in words."""
    if lab.session is None:
        return ""
    runs = [r for r in lab.versions() if r["algorithm"] == algorithm]
    if not runs:
        return f"No {NAMES[algorithm]} version yet."
    row, s = runs[-1], runs[-1].get("summary") or {}
    head = f"**`{row['version']}`** ({NAMES[algorithm]} from `{row['parent']}`, {s.get('step', 0)} steps"
    head += ", stopped early)" if s.get("stopped") else ")"
    if algorithm == "dpo":
        held = "held-out" if s.get("held_out") else "training (no prompt could be held out)"
        return (f"{head}: implicit-reward accuracy on {s.get('pairs_eval') or s.get('pairs_train')} {held} pairs "
                f"{_before_after(s, M.EVAL_DPO_ACCURACY, '.0%')}, margin "
                f"{_before_after(s, M.EVAL_DPO_MARGINS, '+.2f')}. Judge it on fresh samples with `evaluate`.")
    return (f"{head}: log-likelihood of the held-out demonstrations {_before_after(s, M.EVAL_DEMO_LOGPS, '.1f')} "
            f"nats each, loss per token {_before_after(s, M.held_out(M.SFT_LOSS), '.3f')}.")
