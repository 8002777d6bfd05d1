"""DPO and SFT on the embedded SmolLM2-135M (4-bit), with the default settings: DPO moves the implicit reward
margin up on held-out pairs; SFT on 16 demonstrations a judge wrote raises their held-out log-likelihood."""
import pytest

from rlhf_lab import metrics as M
from rlhf_lab.config import DPOConfig, GenerationConfig, SFTConfig

pytestmark = pytest.mark.slow

SHORT_AND_FINISHED = [
    ("Why is the sky blue?", "Sunlight scatters off air molecules, and blue light scatters the most."),
    ("What is a noun?", "A noun is a word that names a person, place or thing."),
    ("How do plants eat?", "Plants make sugar from sunlight, water and carbon dioxide."),
    ("What is rain?", "Rain is water that falls from clouds as drops."),
    ("Why do we sleep?", "Sleep lets the body and brain rest and repair."),
    ("What is a volcano?", "A volcano is an opening where molten rock escapes the Earth."),
    ("What does a heart do?", "The heart pumps blood around the body."),
    ("What is gravity?", "Gravity is the pull that masses have on each other."),
    ("Why is the sea salty?", "Rivers carry dissolved salts into the sea, and they stay when water evaporates."),
    ("What is a planet?", "A planet is a large body that orbits a star."),
]


def rambling(prompt: str) -> str:
    return (f"Well, that is a really interesting question, and there are many things one could say about "
            f"\"{prompt.lower()}\", so let us start from the very beginning and consider the history of the idea, "
            "which goes back a long way and involves")


@pytest.fixture
def lab(real_lab_factory, tmp_path):
    lab = real_lab_factory(tmp_path)
    lab.open_session("learn", create=True)
    return lab


def rounding(models) -> float:
    """How far DPO's margin can be from 0 when policy = reference: the two passes batch the pairs apart, so
    the 4-bit layers' matmuls round differently. In fp32 they agreed to 2.9e-7; bf16 keeps 8 significant bits
    (~0.4%) of each output, and the held-out margin came to 1.0e-4 (both measured on AMD EPYC, bf16 under
    `make test-bf16`, roughly the numerics of an AVX512-BF16 CPU; CUDA, also bf16, was not measured). 2e-3
    is far below the 0.05 that training must reach."""
    import bitsandbytes as bnb
    import torch

    dtypes = {m.compute_dtype for m in models.base_model.modules() if isinstance(m, bnb.nn.Linear4bit)}
    return 1e-4 if dtypes <= {torch.float32} else 2e-3


def test_dpo_moves_rewards_margins_up(lab):
    for prompt, answer in SHORT_AND_FINISHED:
        lab.rank(prompt, [answer, rambling(prompt)], [[0], [1]], extra={"truncated": [False, True]})
    rows = list(lab.dpo(DPOConfig()))
    steps, summary = [r for r in rows if M.DPO_LOSS in r], rows[-1]
    assert summary["pairs_eval"] >= 2 and summary["policy_version"] == "v001"
    # Policy = reference before the first update: margins 0 up to float rounding of the two passes.
    tol = rounding(lab.models)
    assert abs(steps[0][M.REWARDS_MARGINS]) < tol and steps[-1][M.REWARDS_MARGINS] > 0.05, steps
    assert abs(summary["start/" + M.EVAL_DPO_MARGINS]) < tol
    assert summary[M.EVAL_DPO_MARGINS] > summary["start/" + M.EVAL_DPO_MARGINS]
    assert summary[M.EVAL_DPO_ACCURACY] == 1.0, summary


def test_sft_on_judge_written_demonstrations_raises_their_held_out_likelihood(lab):
    written = list(lab.write_demonstrations("concise", 16, GenerationConfig(k=4, max_new_tokens=64), seed=3))
    assert len(written) == 16 and len(lab.demonstrations()) == 16
    assert lab.counts()["pairs"] > 16  # each is preferred over the other answers of its card
    rows = list(lab.sft(SFTConfig()))
    summary = rows[-1]
    assert summary["demonstrations_eval"] >= 3 and summary["policy_version"] == "v001"
    # Measured +0.7 nats per held-out answer: the demonstrations are the model's own (best-of-4) answers, which
    # it already finds likely (~1.2 nats per token), so there is less to learn than from a person's answers.
    gain = summary[M.EVAL_DEMO_LOGPS] - summary["start/" + M.EVAL_DEMO_LOGPS]
    assert gain > 0.3, summary
