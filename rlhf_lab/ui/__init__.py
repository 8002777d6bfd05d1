"""The Gradio UI: the only package (with app.py) that imports gradio. One module per tab."""
from __future__ import annotations

import gradio as gr

from . import api, compare_tab, dpo_tab, ppo_tab, rank_tab, reward_tab, session_tab, sft_tab, story_panel
from .common import lab_marker

# The progress bar is styled by hand: Chromium's default draws the empty track as a solid grey bar, so
# 0% looked like a full bar. Table headers break between words only ("RM agrees"), never inside one.
CSS = """
.lab-card textarea, .lab-arena-card textarea { font-size: 0.95rem; line-height: 1.35; }
.lab-progress { padding: 4px 0; }
.lab-progress progress { -webkit-appearance: none; appearance: none; width: 50%; height: 14px;
  vertical-align: middle; border: 1px solid var(--border-color-primary); border-radius: 7px;
  background: var(--background-fill-primary); overflow: hidden; }
.lab-progress progress::-webkit-progress-bar { background: var(--background-fill-primary); }
.lab-progress progress::-webkit-progress-value { background: var(--color-accent); }
.lab-progress progress::-moz-progress-bar { background: var(--color-accent); }
.lab-table thead th, .lab-table thead th * { word-break: keep-all !important; overflow-wrap: normal !important;
  hyphens: none; }
.lab-story li { margin: 0.15em 0; }
body.lab-large .lab-story { font-size: 1.6rem; line-height: 1.4; }
body.lab-large .lab-card textarea { font-size: 1.35rem; line-height: 1.4; }
body.lab-large .prose, body.lab-large .lab-progress { font-size: 1.25rem; }
"""

# Keyboard shortcuts: Alt+key clicks a button; the order box saves on Enter (Gradio's submit event). A key may
# name buttons on several tabs (Alt+B: "All bad" when ranking, "B is better" when comparing): the visible one is
# clicked. e.code is read where e.key is not a letter (Alt+letter types other characters on some layouts).
HEAD = """
<script>
document.addEventListener('keydown', function (e) {
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  const keys = {g: ['lab-generate'], r: ['lab-random'], b: ['lab-allbad', 'lab-vote-b'], s: ['lab-skip'],
                z: ['lab-undo', 'lab-arena-undo'], a: ['lab-vote-a'], t: ['lab-vote-tie'], x: ['lab-vote-bad'],
                n: ['lab-arena-draw']};
  let k = e.key.toLowerCase();
  if (!/^[a-z]$/.test(k) && e.code && e.code.startsWith('Key')) k = e.code.slice(3).toLowerCase();
  if (k === 'o') {
    const box = document.querySelector('#lab-order textarea, #lab-order input');
    if (box) { box.focus(); e.preventDefault(); }
    return;
  }
  for (const id of keys[k] || []) {
    const el = document.getElementById(id);
    const button = el && (el.tagName === 'BUTTON' ? el : el.querySelector('button'));
    if (button && button.getClientRects().length) { button.click(); e.preventDefault(); return; }
  }
});
</script>
"""


def build_ui(lab) -> gr.Blocks:
    with gr.Blocks(title="rlhf_lab") as demo:
        gr.Markdown("# rlhf_lab\nRank answers → train a reward model → run PPO → watch reward and KL → repeat. "
                    "Or learn straight from the rankings (DPO), or from answers you write (SFT).")
        story = story_panel.build(lab)
        rank = rank_tab.build(lab)
        reward_tab.build(lab)
        ppo_tab.build(lab)
        dpo_tab.build(lab)
        sft_tab.build(lab)
        compare = compare_tab.build(lab)
        session = session_tab.build(lab)
        api.build(lab)
        # When a job starts or ends (PPO made v001, a reward model was trained), the counters, the rankings
        # table and the session summary are redrawn on every page, without a reload.
        timer = gr.Timer(1.0)
        seen = gr.State(None)
        shared = [rank["counters"], rank["table"], session["summary"], story["story"]]

        def refresh(last_seen):
            marker = lab_marker(lab)
            if marker == last_seen:
                return *[gr.update()] * len(shared), last_seen
            rank["agreement"]()  # scores only rankings not checked yet; nothing while a job owns the model
            return (*rank["refresh"](), session["refresh"](), story["refresh"](), marker)

        timer.tick(refresh, [seen], [*shared, seen], show_progress="hidden")
        # A reloaded page (or a second tab) shows the server's current state: a running job, unranked cards.
        demo.load(lambda: (session["refresh"](), *rank["refresh"](),
                           gr.update(choices=lab.list_sessions(), value=lab.session.name if lab.session else None),
                           story["refresh"]()),
                  None, [session["summary"], rank["counters"], rank["table"], session["sessions"], story["story"]]
                  ).then(rank["restore"], None, rank["cards"]
                         ).then(compare["restore"], None, compare["match_outputs"]
                         ).then(rank["agreement"], None, [rank["table"]], show_progress="hidden")
    return demo
