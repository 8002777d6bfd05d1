"""The Gradio UI: the only package (with app.py) that imports gradio. One module per tab."""
from __future__ import annotations

import gradio as gr

from . import api, ppo_tab, rank_tab, reward_tab, session_tab

CSS = """
.lab-card textarea { font-size: 0.95rem; line-height: 1.35; }
.lab-progress { padding: 4px 0; }
.lab-progress progress { width: 50%; height: 14px; vertical-align: middle; }
"""

# Keyboard shortcuts: Alt+key clicks a button; the order box saves on Enter (Gradio's submit event).
HEAD = """
<script>
document.addEventListener('keydown', function (e) {
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  const keys = {g: 'lab-generate', r: 'lab-random', b: 'lab-allbad', s: 'lab-skip', z: 'lab-undo'};
  const k = e.key.toLowerCase();
  if (k === 'o') {
    const box = document.querySelector('#lab-order textarea, #lab-order input');
    if (box) { box.focus(); e.preventDefault(); }
    return;
  }
  const id = keys[k];
  if (!id) return;
  const el = document.getElementById(id);
  const button = el && (el.tagName === 'BUTTON' ? el : el.querySelector('button'));
  if (button) { button.click(); e.preventDefault(); }
});
</script>
"""


def build_ui(lab) -> gr.Blocks:
    with gr.Blocks(title="rlhf_lab") as demo:
        gr.Markdown("# rlhf_lab\nRank answers → train a reward model → run PPO → watch reward and KL → repeat.")
        rank = rank_tab.build(lab)
        reward_tab.build(lab)
        ppo_tab.build(lab)
        session = session_tab.build(lab)
        api.build(lab)
        # A reloaded page (or a second tab) shows the server's current state, including a running job.
        demo.load(lambda: (session["refresh"](), *rank["refresh"](),
                           gr.update(choices=lab.list_sessions(), value=lab.session.name if lab.session else None)),
                  None, [session["summary"], rank["counters"], rank["table"], session["sessions"]])
    return demo
