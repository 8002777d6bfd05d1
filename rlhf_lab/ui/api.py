"""HTTP API endpoints without a widget: scripted ranking for tools and tests (bound to 127.0.0.1 by default)."""
from __future__ import annotations

import gradio as gr

from ..data.rankings import parse_order
from ..errors import LabError


def build(lab) -> None:
    def rank(prompt: str, completions: list[str], order: str, verdict: str = "ranked") -> dict:
        """Record a ranking of `completions` for `prompt`; `order` uses the keyboard syntax (2>1=3>4).
        Returns {"saved": id} once the record is on disk."""
        try:
            groups = parse_order(order, len(completions)) if verdict == "ranked" else []
            rec = lab.rank(prompt, list(completions), groups, verdict=verdict, annotator="api")
        except LabError as e:
            raise gr.Error(str(e)) from e
        return {"saved": rec["id"]}

    def counts() -> dict:
        """Rankings, pairs, all-bad and skipped counts of the open session."""
        return lab.counts() if lab.session else {}

    gr.api(rank, api_name="rank")
    gr.api(counts, api_name="counts")
