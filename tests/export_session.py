"""A session on the tiny fp32 llama with everything an export carries, and its bundle (tests/test_export*.py).

Its adapters hold random non-zero LoRA weights and a reward head with a bias, so a reproduction that ignores
a LoRA, the head or the read-out position cannot pass by accident.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HEAD_BIAS = 0.7
PROMPTS = ["What is rain?", "Name a colour.", "Tell a joke.", "Why is the sky blue?", "Ünïcode ✓\u2028 line?"]


@dataclass
class Exported:
    lab: object
    out: Path
    result: dict
    tiny_dir: Path


def fill_session(lab) -> None:
    """Rankings of every kind, two demonstrations (one retracted) and random saved adapters."""
    import torch

    from rlhf_lab.modeling import checkpoints
    from rlhf_lab.modeling.adapters import POLICY, REWARD

    lab.rank(PROMPTS[0], ["Water falling from clouds.", "Rain.", "I like turtles and many other things.", "Drops"],
             [[0], [1], [2, 3]], extra={"truncated": [False, False, False, True]})
    lab.rank(PROMPTS[1], ["Blue.", "Colours are nice"], [[0], [1]])
    lab.rank(PROMPTS[2], ["no", "nope"], verdict="all_bad")
    lab.rank(PROMPTS[3], ["Because of scattering.\n\nHuman: and?", "No idea."], [[0], [1]])
    lab.rank(PROMPTS[4], ["Ja \u2029 ✓", "Nein"], [[1], [0]])
    session = lab.session
    demos = [{"id": "d1", "prompt": PROMPTS[1], "completion": "Green."},
             {"id": "d2", "prompt": PROMPTS[0], "completion": "Water from clouds."}, {"id": "u1", "retracts": "d2"}]
    (session.root / "demonstrations.jsonl").write_text("".join(json.dumps(d) + "\n" for d in demos))

    models = lab.models
    torch.manual_seed(1)
    with torch.no_grad():
        for param in models.lora_params(POLICY, "lora_B") + models.lora_params(REWARD, "lora_B"):
            param.normal_(0.0, 0.5)
        models.reward_head.weight.normal_()
        models.reward_head.bias.fill_(HEAD_BIAS)
    models.readouts[REWARD] = "last"  # the one read-out a *ForSequenceClassification reproduces
    checkpoints.save_adapter(models, REWARD, session.adapter_dir("reward"), info={"test": True})
    checkpoints.save_adapter(models, POLICY, session.adapter_dir("policy") / "v001", info={"algorithm": "test"})
    session.update_meta(policy_version="v001", round=1, reward_model={"trained_at": 1.0})


def build(root: Path, tiny_dir: Path) -> Exported:
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.lab import Lab

    lab = Lab(root / "sessions", model_cfg=ModelConfig(model=str(tiny_dir), precision="fp32", lora_r=4))
    lab.create_session("s")
    fill_session(lab)
    out = root / "bundle"
    return Exported(lab, out, lab.export_bundle(out), tiny_dir)
