"""Reward Model tab: train the reward adapter on the session's rankings, with a live plot and a Stop."""
from __future__ import annotations

import gradio as gr

from ..config import RewardConfig
from ..config.reward import READOUTS
from ..plots import reward_figure
from ..errors import LabError
from .common import err, job_marker, job_view, ok, phase_frame

JOB_NAMES = ("train reward model",)


def result_text(lab) -> str:
    if lab.session is None:
        return ""
    rm = lab.meta().reward_model
    if not rm or rm.get("eval/reward_accuracy") is None:
        return "No reward model yet. Rank a few prompts (each ranking of 4 gives up to 6 pairs), then Train."
    ci = rm.get("eval/accuracy_ci")
    interval = f" (95% interval {ci[0]:.0%}–{ci[1]:.0%})" if ci else ""
    correct = round(rm["eval/reward_accuracy"] * rm["pairs_eval"])
    judge = lab.judge()
    whom = f"the judge “{judge}”" if judge else "you"
    text = (f"**Your reward model agrees with {whom} on {correct} of {rm['pairs_eval']} pairs it never saw: held-out "
            f"accuracy {rm['eval/reward_accuracy']:.0%}**{interval}. Chance is 50%. "
            f"({rm['pairs_train']} training pairs"
            + (f"; read at: {rm['readout']}" if rm.get("readout") else "") + ".)")
    text += chosen_epoch_line(rm)
    r2 = rm.get("reward/length_r2")
    if r2 is not None:
        text += f"\n\nLength bias: answer length alone explains {r2:.0%} of its scores."
    text += against_length_line(rm)
    return text + "".join(f"\n\n⚠️ {w}" for w in rm.get("warnings") or [])


def chosen_epoch_line(rm: dict) -> str:
    """The held-out loss chose which epoch to keep, so the held-out accuracy is read on the pairs that chose."""
    lopo = rm.get("eval/reward_accuracy_lopo")
    if lopo is None:
        return ""
    return (f"\n\nThese pairs also chose which epoch to keep (the lowest held-out loss). Scoring each held-out "
            f"prompt at the epoch the other held-out prompts choose instead: {lopo:.0%}.")


def against_length_line(rm: dict) -> str:
    """The held-out pairs where length points the wrong way: only reading content gets them right."""
    acc, n, rule = rm.get("eval/reward_accuracy_against_length"), rm.get("pairs_against_length"), \
        rm.get("eval/length_rule_accuracy")
    if acc is None or not n:
        return ""
    return (f"\n\nWhere length points the wrong way ({n} held-out pairs, where \"prefer the "
            f"{rm.get('length_rule', 'longer')} answer\" is wrong; that rule alone gets {rule:.0%} overall), "
            f"the reward model is right on {round(acc * n)} of {n}: {acc:.0%}.")


def build(lab):
    with gr.Tab("Reward Model"):
        gr.Markdown("Bradley–Terry on your pairs: the reward adapter learns to score the answer you preferred "
                    "higher. A share of prompts is held out to measure accuracy honestly.")
        with gr.Row():
            epochs = gr.Slider(1, 20, value=RewardConfig.epochs, step=1, label="epochs (max)")
            lr = gr.Number(value=RewardConfig.learning_rate, label="learning rate")
            rank = gr.Slider(1, 64, value=RewardConfig.lora_r, step=1, label="LoRA rank")
            seconds = gr.Number(value=0, precision=0, minimum=0, label="time budget (s, 0 = none: stop by epochs)")
            readout = gr.Dropdown(list(READOUTS), value=RewardConfig.readout, label="read the answer at",
                                  info="last+mean: the mean over its tokens and its end token; mean: its "
                                       "tokens only (word choice wherever it stands, blind to a cut ending); "
                                       "last: the end token only (learns length more easily; the only one "
                                       "that exports)")
            cont = gr.Checkbox(value=False, label="continue from saved reward model")
        with gr.Row():
            train_btn = gr.Button("Train reward model", variant="primary", elem_id="lab-train-rm")
            stop_btn = gr.Button("Stop", variant="stop", elem_id="lab-stop-rm")
        message = gr.Markdown()
        progress = gr.HTML(job_view(lab, JOB_NAMES)[0], elem_id="lab-rm-progress")
        result = gr.Markdown(result_text(lab), elem_id="lab-rm-result")
        plot = gr.Plot(reward_figure(phase_frame(lab, "reward")), elem_id="lab-rm-plot")
        timer = gr.Timer(1.0)
        seen = gr.State(-1)

    def train(epochs_v, lr_v, rank_v, seconds_v, cont_v, readout_v=RewardConfig.readout):
        try:
            cfg = RewardConfig(epochs=int(epochs_v), learning_rate=float(lr_v), lora_r=int(rank_v),
                               max_seconds=float(seconds_v) if seconds_v else None, continue_training=bool(cont_v),
                               readout=str(readout_v))
            lab.train_reward(cfg, inline=False)
            return ok("Training started.")
        except LabError as e:
            return err(str(e))

    def tick(last_seen):
        marker = job_marker(lab, JOB_NAMES)
        if marker == last_seen:
            return gr.update(), gr.update(), gr.update(), last_seen
        html, _ = job_view(lab, JOB_NAMES)
        return html, result_text(lab), reward_figure(phase_frame(lab, "reward")), marker

    train_btn.click(train, [epochs, lr, rank, seconds, cont, readout], [message], api_name="train_reward")
    stop_btn.click(lambda: ok("Stopping…") if lab.stop() else err("Nothing is running."), None, [message],
                   api_name="stop_reward")
    timer.tick(tick, [seen], [progress, result, plot, seen], show_progress="hidden")
    return {}
