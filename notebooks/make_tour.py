"""Write notebooks/tour.ipynb (without outputs) from the cells below: `python notebooks/make_tour.py`.

The notebook is generated, never hand-edited, so its JSON stays clean in review and carries no stale outputs.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# rlhf_lab tour: the whole RLHF loop in a notebook

We take a small chat model (SmolLM2-135M-Instruct, shipped inside the lab), collect preferences over its answers,
train a **reward model** on those preferences, and nudge the model with **PPO** towards answers the reward model
likes, while a **KL** penalty keeps it close to where it started. Then we check with a judge whether it got better.

A simulated annotator, the `enthusiastic` judge, does most of the ranking so the tour runs on its own; it prefers
lively, upbeat answers. The settings are small so that everything runs in a few minutes on a laptop CPU.
Every long step shows a progress bar; the kernel's stop button stops a step cleanly, as Stop does in the app."""),
    ("code", """import json
import os
import time

from rlhf_lab import Lab
from rlhf_lab.config import GenerationConfig, PPOConfig, RewardConfig
from rlhf_lab.lab import DEFAULT_SESSIONS
from rlhf_lab.notebook import Notebook

JUDGE = "enthusiastic"
ANSWERS = GenerationConfig(k=4, max_new_tokens=64, seed=0)  # 4 answers per prompt, short ones

lab = Lab(os.environ.get("RLHF_LAB_SESSIONS") or DEFAULT_SESSIONS)  # the app's sessions folder
nb = Notebook(lab)
lab.open_session(f"tour-{time.strftime('%Y%m%d-%H%M%S')}", create=True)  # loads the model (seconds)
print(lab.decode_note)"""),
    ("md", """## 1. Generate: several answers to one prompt

RLHF starts from comparisons, so the model writes several answers to the same prompt. They differ because we
*sample* (temperature 0.8): each token is drawn at random from the model's distribution."""),
    ("code", """card = nb.generate("Give me one tip for a rainy weekend.", ANSWERS)
for i, text in enumerate(card["texts"]):
    print(f"[{i}] {text}\\n")"""),
    ("md", """## 2. Rank them yourself

A ranking lists the answers best first, as groups of indices: `[[2], [0], [1, 3]]` means answer 2 is best, then
answer 0, and answers 1 and 3 tie last. Change it to what *you* think. The ranking is on disk (flushed and
fsynced) when `rank` returns; one ranking of 4 answers gives up to 6 preference pairs."""),
    ("code", """record = lab.rank(card["prompt"], card["texts"], [[2], [0], [1, 3]])
lab.counts()"""),
    ("md", """## 3. Autopilot: let the judge rank more prompts

Ranking by hand is the point of the lab, but a reward model needs more than one prompt. The judge ranks 4 answers
for each of 10 prompts from its own prompt set, exactly as a person would in the app (annotator `judge:enthusiastic`)."""),
    ("code", """autopilot = nb.simulate(JUDGE, 10, ANSWERS)
print(autopilot)
nb.rankings_frame().tail()"""),
    ("code", """nb.pairs_frame()[["prompt", "chosen", "rejected"]].head()"""),
    ("md", """## 4. Train the reward model

The reward model is a small LoRA adapter on the same base model with a scalar head. It learns a score so that, for
each pair, the chosen answer scores higher than the rejected one (the Bradley–Terry loss). A quarter of the prompts
are held out: **held-out accuracy** is the share of their pairs it orders correctly. 50% is a coin; with a dozen
prompts expect a noisy number, and watch whether it beats the coin."""),
    ("code", """rm = nb.train_reward(RewardConfig(epochs=4))
held_out_accuracy = rm["eval/reward_accuracy"]
print(f"held-out accuracy {held_out_accuracy:.0%} on {rm['pairs_eval']} held-out pairs ({rm['pairs_train']} for training)")
for warning in rm["warnings"]:
    print("note:", warning)
nb.reward_figure()"""),
    ("md", """## 5. PPO: move the policy towards higher reward, on a leash

Each PPO step samples answers from the current policy, scores them with the reward model, subtracts
`kl_coef × KL` (how far the policy moved from the original model), and updates the policy adapter a little.
Watch the reward-model score (the *proxy*) beside the judge's score (the *gold*): if the proxy rises and the gold
does not, the policy is learning the reward model's blind spots rather than the judge's taste."""),
    ("code", """steps = nb.ppo(3, PPOConfig(batch_size=8, max_new_tokens=64))
print(steps)
nb.ppo_figure()"""),
    ("md", """## 6. Evaluate: did it get better?

Fresh answers to prompts the session never ranked, from the new policy and from the original model (same prompts,
same random seeds), both scored by the judge. The KL says how far the policy moved, in nats per answer."""),
    ("code", """result = nb.evaluate(JUDGE, 8, PPOConfig(max_new_tokens=64))
print(f"judge score: policy {result['policy_score']:.3f} vs reference {result['reference_score']:.3f}; "
      f"KL {result['kl']:.3f} nats; length {result['policy_length']:.0f} vs {result['reference_length']:.0f} tokens")
print("RESULT " + json.dumps({"held_out_accuracy": held_out_accuracy, "policy_score": result["policy_score"],
                              "reference_score": result["reference_score"], "kl": result["kl"]}))"""),
    ("md", """With three PPO steps the change is small and noisy: that is honest. In a workshop, go round again: rank the new
policy's answers (step 1-2), retrain the reward model, run more PPO steps, and compare versions."""),
    ("code", """nb.versions_frame()[["version", "algorithm", "parent", "current"]]"""),
    ("md", """## 7. The app, inline, over the same lab

`nb.ui()` opens the lab's web app in the notebook (on 127.0.0.1 only). It shares this notebook's loaded model and
session: a ranking saved in the app shows up in `nb.rankings_frame()` in the next cell. `nb.close_ui()` stops it."""),
    ("code", """url = nb.ui()
print(url)"""),
]


def build() -> nbformat.NotebookNode:
    cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS]
    for i, cell in enumerate(cells):
        cell.id = f"tour-{i:02d}"  # stable ids: regenerating gives the same file
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"},
                                               "language_info": {"name": "python"}})


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "tour.ipynb"
    nbformat.write(build(), out)
    print(f"wrote {out}")
