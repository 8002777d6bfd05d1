"""Workshop scenarios: one-click presets for a classic demo (judge, prompts, sizes of each stage of the loop).

Each is sized so the whole loop (autopilot -> reward model -> DPO -> evaluate) fits a workshop slot on a 2-core
CPU with the default model: 32 prompts x 4 answers give ~80-100 pairs, a reward model trained for at most 2
minutes (for the story: how well a model of your taste generalises), DPO on the same pairs, 16 prompts to
evaluate. DPO rather than PPO because of the clock: on the 2-core AVX2 machine a PPO step of 16 rollouts x 128
tokens takes ~40 s and the concise loop's judge score only moved after ~15 steps at 1.5e-4 (10 minutes of PPO),
while DPO moved the concise and enthusiastic judges' scores in 2-4 minutes at under 1 nat of KL on the same
rankings (docs/results.md, "DPO beside PPO" and the enthusiastic DPO table before it). The UI's PPO tab is one
click away for the classic PPO loop. Measured per scenario in docs/results.md (7.5-9 minutes each). Prompt
files ship in rlhf_lab/data/scenario_prompts/.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import GenerationConfig, RewardConfig
from .data.prompts import prompt_set
from .errors import ConfigError


@dataclass(frozen=True)
class Scenario:
    name: str
    """Short id used by the CLI (`scenario --name`)."""
    title: str
    """What the presenter says: the taste the judge stands for."""
    judge: str
    """A judge name as judges.get_judge reads it."""
    goal: str
    """One sentence for the audience: what to watch for."""
    prompt_set: str = "general"
    """Its prompts: a set under rlhf_lab/data/scenario_prompts/ (data/prompts.prompt_set), or 'general'."""
    n_prompts: int = 32
    """Prompts the judge ranks."""
    k: int = 4
    """Answers per prompt."""
    max_new_tokens: int = 128
    """Answer cap while ranking: the same as PPO's rollouts (PPOConfig), so that what PPO samples looks like
    what was ranked; DPO keeps up to 192 answer tokens (DPOConfig.max_completion_length), so nothing is cut."""
    reward_seconds: float = 180.0
    """Time budget of reward-model training in `scenario --run`, so the loop fits a workshop slot on a slow
    laptop. On the 2-core AMD EPYC the four scenarios' reward models train in 98-164 s (early stopping or the
    8 epochs end them), the same models as `train-rm`; a 120 s budget cut two of them short there. When the
    budget ends training, the reward model's warnings say so."""
    algorithm: str = "dpo"
    """'dpo' (straight from the pairs; the reward model is still trained, for the story) or 'ppo' (reward model
    + PPO, ppo_steps steps). DPO fits the 10-minute slot on a 2-core CPU; PPO does not (see above)."""
    ppo_steps: int = 12
    """PPO steps when algorithm is 'ppo' (16 rollouts of up to 128 tokens each)."""
    eval_prompts: int = 16
    """Fresh prompts the judge scores, policy against the original model."""

    @property
    def generation(self) -> GenerationConfig:
        return GenerationConfig(k=self.k, max_new_tokens=self.max_new_tokens)

    @property
    def reward(self) -> RewardConfig:
        return RewardConfig(max_seconds=self.reward_seconds)

    def prompts(self) -> list[str]:
        return list(prompt_set(self.prompt_set))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("concise", "Make it concise", "concise",
             "Watch answers get shorter, and check whether they still say something.",
             "concise"),
    Scenario("cheerful", "Make it cheerful", "enthusiastic",
             "Watch exclamation marks and upbeat words appear (and whether the answers stay sensible).",
             "cheerful"),
    Scenario("no_lists", "No bullet lists", "no_lists",
             "Prompts that invite lists; the judge prefers prose. Watch the lists disappear.",
             "no_lists"),
    Scenario("mention_you", "Mention the user", "mentions:you",
             "Advice questions; the judge prefers answers that speak to the reader as 'you'.",
             "mention_you"),
)


def names() -> list[str]:
    return [s.name for s in SCENARIOS]


def get(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise ConfigError(f"Unknown scenario {name!r}. Scenarios: {', '.join(names())}.")


def prompts_for_judge(judge: str) -> list[str]:
    """The prompts a judge ranks by default: its scenario's set (a taste shows where the prompts invite it:
    lists where lists are likely, warmth where there is something to be glad about), else the built-in set."""
    for scenario in SCENARIOS:
        if scenario.judge == judge:
            return scenario.prompts()
    return list(prompt_set("general"))
