"""Generate & Rank tab: prompt, K streamed completion cards, rank by keyboard or per-card rank, undo."""
from __future__ import annotations

import gradio as gr

from ..config import MAX_K, GenerationConfig
from ..data.prompts import random_prompt
from ..data.rankings import format_order, groups_from_ranks, parse_order
from ..errors import LabError
from . import autopilot_panel, demonstration_box
from .common import err, ok
from .rankings_table import MAX_CHARS, WIDTHS, fill_agreement, rankings_table

EMPTY = {"prompt": None, "texts": [], "policy": None, "truncated": []}
NEXT_STEP = "Next: type a new prompt (the box is selected) or press Random prompt (Alt+R), then Generate (Alt+G)."
# After a save the prompt box is focused with its text selected: typing replaces it, Alt+G regenerates it.
FOCUS_PROMPT = """() => {
  const status = document.querySelector('#lab-rank-status');
  const box = document.querySelector('#lab-prompt textarea');
  if (box && status && status.innerText.includes('Saved')) { box.focus(); box.select(); }
}"""


def counters(lab) -> str:
    if lab.session is None:
        return "No session open."
    c, meta = lab.counts(), lab.meta()
    return (f"**{c['rankings']}** rankings · **{c['pairs']}** pairs · {c['all_bad']} all bad · "
            f"{c['skipped']} skipped · {c['demonstrations']} written answers · session `{lab.session.name}` "
            f"· policy `{meta.policy_version}` · round {meta.round}")


def generating_text(event: dict) -> str:
    """Status while answers stream: tokens so far, time spent and an upper bound on the time left."""
    if "tokens" not in event:
        return "Generating… reading the prompt."
    return (f"Generating… {event['tokens']} of at most {event['max_new_tokens']} tokens per answer · "
            f"{event['elapsed_s']:.0f}s so far · at most ~{event['eta_s']:.0f}s left")


def build(lab):
    with gr.Tab("Generate & Rank"):
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", lines=2, scale=4, placeholder="Ask the model something…",
                                elem_id="lab-prompt")
            with gr.Column(scale=1, min_width=180):
                random_btn = gr.Button("Random prompt (Alt+R)", elem_id="lab-random")
                generate_btn = gr.Button("Generate (Alt+G)", variant="primary", elem_id="lab-generate")
        with gr.Accordion("Sampling", open=False):
            with gr.Row():
                k = gr.Slider(1, MAX_K, value=GenerationConfig.k, step=1, label="K (completions)")
                max_new = gr.Slider(1, 512, value=GenerationConfig.max_new_tokens, step=1, label="max_new_tokens")
                temperature = gr.Slider(0.05, 2.0, value=GenerationConfig.temperature, step=0.05, label="temperature")
                top_p = gr.Slider(0.05, 1.0, value=GenerationConfig.top_p, step=0.05, label="top_p")
                seed = gr.Number(value=None, label="seed (blank = random)", precision=0)
        autopilot = autopilot_panel.build(lab)
        gr.Markdown("Rank the cards: type an order such as `2>1=3>4` (best first, `=` ties, cards left out share "
                    "last place) and press Enter, or give each card a rank and press Save.")
        cards, ranks = [], []
        with gr.Row(equal_height=True):
            for i in range(MAX_K):
                with gr.Column(visible=i < GenerationConfig.k, min_width=220) as col:
                    cards.append(gr.Textbox(label=f"Card {i + 1}", lines=6, max_lines=14, interactive=False,
                                            elem_classes=["lab-card"]))
                    ranks.append(gr.Radio([str(r) for r in range(1, GenerationConfig.k + 1)], label="rank",
                                          elem_classes=["lab-rank"]))
                cards[-1].column = col
        columns = [c.column for c in cards]
        with gr.Row():
            order = gr.Textbox(label="Order (Alt+O to focus, Enter to save)", placeholder="2>1=3>4",
                               elem_id="lab-order", scale=2)
            save_btn = gr.Button("Save ranking (Enter)", variant="primary", elem_id="lab-save")
            all_bad_btn = gr.Button("All bad (Alt+B)", elem_id="lab-allbad")
            skip_btn = gr.Button("Skip (Alt+S)", elem_id="lab-skip")
            undo_btn = gr.Button("Undo last (Alt+Z)", elem_id="lab-undo")
        status = gr.Markdown(elem_id="lab-rank-status")
        current = gr.State(dict(EMPTY))
        demonstration_box.build(lab, current, prompt)
        count_md = gr.Markdown(counters(lab), elem_id="lab-counters")
        agree: dict = {}  # (ranking id, reward model) -> (agreeing pairs, pairs), shared by every page
        table = gr.Dataframe(rankings_table(lab, agree), label="Rankings (newest first)", interactive=False,
                             wrap=True, column_widths=WIDTHS, max_chars=MAX_CHARS, elem_id="lab-rankings",
                             elem_classes=["lab-table"])

    def card_updates(texts, scores=None, truncated=None):
        out = []
        for i in range(MAX_K):
            label = f"Card {i + 1}" + (f" · reward {scores[i]:+.2f}" if scores and i < len(scores) else "")
            if truncated and i < len(truncated) and truncated[i]:
                label += " · ✂ cut off at the length limit (unfinished)"
            out.append(gr.update(value=texts[i] if i < len(texts) else "", label=label))
        return out

    def layout_updates(n):
        choices = [str(r) for r in range(1, n + 1)]
        return ([gr.update(visible=i < n) for i in range(MAX_K)] +
                [gr.update(choices=choices, value=None) for _ in range(MAX_K)])

    def do_generate(prompt_text, k_value, max_new_value, temp_value, top_p_value, seed_value):
        try:
            cfg = GenerationConfig(k=int(k_value), max_new_tokens=int(max_new_value), temperature=float(temp_value),
                                   top_p=float(top_p_value), seed=None if seed_value in (None, "") else int(seed_value))
            n = cfg.k
            stream = lab.generate_stream(prompt_text, cfg)
            yield (*card_updates([""] * n), *layout_updates(n), dict(EMPTY), generating_text({}), "")
            for event in stream:
                if not event["done"]:
                    yield (*card_updates(event["texts"]), *[gr.update()] * (2 * MAX_K), dict(EMPTY),
                           generating_text(event), gr.update())
                    continue
                yield shown_cards(event, layout=False)
        except LabError as e:
            yield (*[gr.update()] * MAX_K, *[gr.update()] * (2 * MAX_K), gr.update(), err(str(e)), gr.update())

    def shown_cards(event, layout=True):
        """Outputs of gen_outputs for finished cards: a generation's final event or lab.pending."""
        n = len(event["texts"])
        state = {"prompt": event["prompt"], "texts": event["texts"], "policy": event["policy"],
                 "truncated": event["truncated"]}
        msg = f"{n} completions from policy `{event['policy']}`. Rank them."
        return (*card_updates(event["texts"], event["scores"], event["truncated"]),
                *(layout_updates(n) if layout else [gr.update()] * (2 * MAX_K)), state, msg, "")

    def restore():
        """On page load: the cards generated but not ranked yet (kept on the Lab), else nothing changes."""
        pending = lab.pending_cards()
        if pending is None:
            return (*[gr.update()] * (3 * MAX_K), gr.update(), gr.update(), gr.update())
        return shown_cards(pending)

    def after_save(message):
        return (dict(EMPTY), f"{message} {NEXT_STEP}", counters(lab), rankings_table(lab, agree), "",
                *[gr.update(value="") for _ in range(MAX_K)], *[gr.update(value=None) for _ in range(MAX_K)])

    def no_change(message):
        return (gr.update(), err(message), gr.update(), gr.update(), gr.update(),
                *[gr.update()] * MAX_K, *[gr.update()] * MAX_K)

    def save(state, order_text, *rank_values, verdict="ranked"):
        if not state or not state.get("texts"):
            return no_change("Nothing to rank yet: generate first.")
        texts = state["texts"]
        try:
            groups = []
            if verdict == "ranked":
                groups = (parse_order(order_text, len(texts)) if (order_text or "").strip()
                          else groups_from_ranks(list(rank_values[:len(texts)])))
            rec = lab.rank(state["prompt"], texts, groups, verdict=verdict, policy=state["policy"],
                           extra={"truncated": state.get("truncated") or [False] * len(texts)})
        except LabError as e:
            return no_change(str(e))
        what = {"ranked": f"ranking {format_order(rec['ranking'])}", "all_bad": "'all bad'",
                "skipped": "skip"}[verdict]
        return after_save(ok(f"Saved {what} (id {rec['id']})."))

    def undo():
        try:
            rec = lab.undo()
        except LabError as e:
            return err(str(e)), counters(lab), rankings_table(lab, agree)
        return (ok(f"Undone: ranking {rec['id']} of “{rec['prompt'][:60]}”."), counters(lab),
                rankings_table(lab, agree))

    def agreement_update():
        return rankings_table(lab, agree) if fill_agreement(lab, agree) else gr.update()

    gen_inputs = [prompt, k, max_new, temperature, top_p, seed]
    gen_outputs = cards + columns + ranks + [current, status, order]
    generate_btn.click(do_generate, gen_inputs, gen_outputs, api_name="generate")
    prompt.submit(do_generate, gen_inputs, gen_outputs)
    random_btn.click(lambda: random_prompt(), None, [prompt])
    save_outputs = [current, status, count_md, table, order] + cards + ranks
    save_inputs = [current, order] + ranks
    # Saving answers at once; the reward model's agreement fills in afterwards, without a spinner on the table.
    for event in (save_btn.click(save, save_inputs, save_outputs),
                  order.submit(save, save_inputs, save_outputs),
                  all_bad_btn.click(lambda s, o, *r: save(s, o, *r, verdict="all_bad"), save_inputs, save_outputs),
                  skip_btn.click(lambda s, o, *r: save(s, o, *r, verdict="skipped"), save_inputs, save_outputs)):
        event.then(None, js=FOCUS_PROMPT)  # kept apart: the agreement fill must not wait on a js-only step
        event.then(agreement_update, None, [table], show_progress="hidden")
    undo_btn.click(undo, None, [status, count_md, table])
    autopilot_panel.wire(lab, autopilot, cards, columns, current, EMPTY, count_md, table,
                         lambda: (counters(lab), rankings_table(lab, agree)))
    return {"counters": count_md, "table": table, "cards": gen_outputs, "restore": restore,
            "refresh": lambda: (counters(lab), rankings_table(lab, agree)), "agreement": agreement_update}
