"""Compare tab: blind A/B matches between policy versions, votes with keyboard shortcuts, the reveal after the
vote, undo, and the Bradley–Terry leaderboard with its win-rate matrix and advice; a judge can vote instead."""
from __future__ import annotations

import re

import gradio as gr
import pandas as pd

from ..data import votes as vote_records
from ..errors import LabError
from .common import err, job_marker, job_view, lab_marker, ok

JOB_NAMES = ("arena",)
VERDICT_WORDS = {"A": "A is better", "B": "B is better", "tie": "a tie", "both_bad": "both bad"}
BOARD_COLUMNS = ["rank", "version", "rating", "95% interval", "length-controlled", "wins", "losses", "ties", "votes"]
BOARD_WIDTHS = ["64px", "90px", "80px", "130px", "170px", "70px", "70px", "60px", "70px"]
# Alt+A / B / T / X vote, Alt+N draws, Alt+Z undoes: the shortcut script in ui/__init__.py (HEAD) clicks only
# the visible button, so Alt+B means "B is better" here and "All bad" on the ranking tab.


def plain(text: str, limit: int = 200) -> str:
    """A prompt inside a Markdown line, shown as typed: markup characters are escaped, long text shortened."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>&])", r"\\\1", text)


def board_frames(lab, annotator: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(leaderboard table, win-rate matrix, advice in Markdown) for the votes of `annotator` ("all": everyone)."""
    if lab.session is None:
        return pd.DataFrame(columns=BOARD_COLUMNS), pd.DataFrame(), "No session open."
    result = lab.leaderboard(annotator or "all")
    rows = [[r["rank"], r["version"], round(r["rating"]), f"{r['ci_low']:.0f} – {r['ci_high']:.0f}",
             f"{r['lc_rating']:.0f} ({r['lc_ci_low']:.0f} – {r['lc_ci_high']:.0f})", r["wins"], r["losses"],
             r["ties"], r["votes"]] for r in result["leaderboard"]]
    wr = result["win_rate"]
    matrix = pd.DataFrame(
        [[v] + ["—" if i == j else ("" if cell is None else f"{cell:.2f} ({wr['counts'][i][j]})")
                for j, cell in enumerate(line)] for i, (v, line) in enumerate(zip(wr["versions"], wr["matrix"]))],
        columns=["row beats column →"] + wr["versions"])
    said = result["warnings"] + result["advice"]
    if result["votes"]:
        n = result["votes"]
        said.insert(0, f"{n} vote{'' if n == 1 else 's'} ({result['annotator']}). Ratings: Bradley–Terry, ties "
                       "count half, base = 1000, 95% bootstrap intervals; ranks separate only versions whose "
                       "intervals do not overlap.")
    return pd.DataFrame(rows, columns=BOARD_COLUMNS), matrix, "\n\n".join(said)


def voter_choices(lab) -> tuple[list[str], str]:
    voters = lab.voters() if lab.session is not None else []
    return ["all"] + voters, ("human" if "human" in voters else "all")


def version_choices(lab) -> tuple[list[str], list[str]]:
    """Every version of the session, and the default pick: base and the current policy (all if it is base)."""
    if lab.session is None:
        return [], []
    versions = lab.policy_versions()
    current = lab.meta().policy_version
    return versions, (["base", current] if current != "base" and current in versions else versions)


def build(lab):
    with gr.Tab("Compare"):
        gr.Markdown("Blind A/B: each match samples one answer from each of two versions for the same prompt and "
                    "shows them as A and B in random order. Vote, then see which was which. The leaderboard "
                    "below rates every version from all votes.")
        choices, picked = version_choices(lab)
        with gr.Row():
            versions = gr.CheckboxGroup(choices, value=picked, label="Versions to compare", scale=2,
                                        elem_id="lab-arena-versions")
            prompt = gr.Textbox(label="Prompt (blank: a random built-in one)", scale=3, elem_id="lab-arena-prompt")
            draw_btn = gr.Button("New match (Alt+N)", variant="primary", scale=1, elem_id="lab-arena-draw")
        with gr.Row(equal_height=True):
            card_a = gr.Textbox(label="A", lines=8, max_lines=16, interactive=False, elem_id="lab-arena-a",
                                elem_classes=["lab-arena-card"])
            card_b = gr.Textbox(label="B", lines=8, max_lines=16, interactive=False, elem_id="lab-arena-b",
                                elem_classes=["lab-arena-card"])
        with gr.Row():
            vote_btns = {"A": gr.Button("A is better (Alt+A)", elem_id="lab-vote-a"),
                         "B": gr.Button("B is better (Alt+B)", elem_id="lab-vote-b"),
                         "tie": gr.Button("Tie (Alt+T)", elem_id="lab-vote-tie"),
                         "both_bad": gr.Button("Both bad (Alt+X)", elem_id="lab-vote-bad")}
            undo_btn = gr.Button("Undo my last vote (Alt+Z)", elem_id="lab-arena-undo")
        status = gr.Markdown(elem_id="lab-arena-status")
        voters, voter = voter_choices(lab)
        annotator = gr.Dropdown(voters, value=voter, label="Votes counted", allow_custom_value=True,
                                elem_id="lab-arena-annotator")
        board, matrix, advice_md = board_frames(lab, voter)
        board_df = gr.Dataframe(board, label="Leaderboard", interactive=False, column_widths=BOARD_WIDTHS,
                                elem_id="lab-arena-board", elem_classes=["lab-table"])
        matrix_df = gr.Dataframe(matrix, label="Win rate (ties half; battles in brackets)", interactive=False,
                                 elem_id="lab-arena-winrate", elem_classes=["lab-table"])
        advice = gr.Markdown(advice_md, elem_id="lab-arena-advice")
        with gr.Accordion("Let a judge vote (autopilot)", open=False):
            with gr.Row():
                judge = gr.Textbox(value="concise",
                                   label="judge (concise, enthusiastic, no_lists, plain_words, mentions:<word>)")
                n_prompts = gr.Slider(1, 128, value=16, step=1, label="matches")
                run_btn = gr.Button("Run judge arena", variant="primary", elem_id="lab-arena-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="lab-arena-stop")
            progress = gr.HTML(job_view(lab, JOB_NAMES)[0], elem_id="lab-arena-progress")
        match = gr.State(None)
        timer = gr.Timer(1.0)
        seen = gr.State(None)

    def boards(who):
        return board_frames(lab, who)

    def draw(picked_versions, prompt_text, who):
        yield None, gr.update(value="", label="A"), gr.update(value="", label="B"), "Sampling two answers…"
        try:
            m = lab.draw_match(list(picked_versions or []), prompt_text)
        except LabError as e:
            yield None, gr.update(), gr.update(), err(str(e))
            return
        yield (m["match"], cut_label(m["a"], "A", m["a_truncated"]), cut_label(m["b"], "B", m["b_truncated"]),
               f"Prompt: “{plain(m['prompt'])}”. Which answer is better? Alt+A, Alt+B, Alt+T (tie) or "
               "Alt+X (both bad).")

    def vote(match_id, who, verdict):
        if not match_id:
            return (match_id, gr.update(), gr.update(), err("Draw a match first (New match, Alt+N)."),
                    *[gr.update()] * 4)
        try:
            r = lab.vote(match_id, verdict)
        except LabError as e:
            return match_id, gr.update(), gr.update(), err(str(e)), *[gr.update()] * 4
        choices_now, _ = voter_choices(lab)
        return (None, gr.update(label=f"A · {r['a']}"), gr.update(label=f"B · {r['b']}"),
                ok(f"Saved: {VERDICT_WORDS[verdict]}. A was **{r['a']}**, B was **{r['b']}**. "
                   "New match: Alt+N."), *boards(who), gr.update(choices=choices_now))

    def undo(who):
        try:
            rec = lab.undo_vote("human")
        except LabError as e:
            return err(str(e)), *[gr.update()] * 3
        return (ok(f"Undone: your vote on “{plain(rec['prompt'], 60)}” (A was {rec['a']['version']}, "
                   f"B was {rec['b']['version']})."), *boards(who))

    def run(picked_versions, judge_name, n):
        try:
            lab.run_arena((judge_name or "").strip(), list(picked_versions or []), int(n), inline=False)
            return ok(f"Judge arena started: {int(n)} matches.")
        except LabError as e:
            return err(str(e))

    def restore():
        """On page load: the match drawn but not voted on yet, so a reload does not lose it."""
        m = lab.open_match()
        if m is None:
            return gr.update(), gr.update(), gr.update(), gr.update()
        return (m["match"], cut_label(m["a"], "A", m["a_truncated"]), cut_label(m["b"], "B", m["b_truncated"]),
                f"Prompt: “{plain(m['prompt'])}”. Which answer is better?")

    def tick(last_seen, who):
        marker = (job_marker(lab, JOB_NAMES), lab_marker(lab), votes_marker(lab))
        if marker == last_seen:
            return *[gr.update()] * 6, last_seen
        choices_now, picked_now = version_choices(lab)
        html, _ = job_view(lab, JOB_NAMES)
        return (html, *boards(who), gr.update(choices=choices_now), gr.update(choices=voter_choices(lab)[0]),
                marker)

    board_outputs = [board_df, matrix_df, advice]
    draw_btn.click(draw, [versions, prompt, annotator], [match, card_a, card_b, status], api_name="arena_draw")
    prompt.submit(draw, [versions, prompt, annotator], [match, card_a, card_b, status])
    for verdict, btn in vote_btns.items():
        btn.click(lambda m, who, v=verdict: vote(m, who, v), [match, annotator],
                  [match, card_a, card_b, status, *board_outputs, annotator])
    undo_btn.click(undo, [annotator], [status, *board_outputs])
    # Only the person's own pick redraws here: a vote's or the timer's new choices must not queue a redraw that
    # could land after a later undo and show a stale count (the timer also redraws when votes.jsonl changes).
    annotator.input(boards, [annotator], board_outputs)
    run_btn.click(run, [versions, judge, n_prompts], [status], api_name="arena_run")
    stop_btn.click(lambda: ok("Stopping…") if lab.stop() else err("Nothing is running."), None, [status])
    timer.tick(tick, [seen, annotator], [progress, *board_outputs, versions, annotator, seen],
               show_progress="hidden")
    return {"restore": restore, "match_outputs": [match, card_a, card_b, status]}


def votes_marker(lab):
    """Changes whenever a vote or an undo is written (votes.jsonl only grows), from any page or the CLI."""
    try:
        st = (lab.session.root / vote_records.FILE).stat()
    except (AttributeError, OSError):  # no session, or no votes yet
        return None
    return st.st_size, st.st_mtime_ns


def cut_label(text: str, side: str, truncated: bool):
    return gr.update(value=text, label=side + (" · ✂ cut off at the length limit" if truncated else ""))
