"""LAUNCH.md and the TRL recipes (trl/*.yaml): the exact commands to continue a session on a cluster.

Flag names are checked against the upstream sources: TRL 1.16.0 (`trl <command> --config recipe.yaml
--accelerate_config NAME`), OpenRLHF 0.11.0 (dotted flags, commit 3c3be62) and veRL 0.8.0.dev (hydra keys of
verl/trainer/config/_generated_ppo_trainer.yaml, commit b178a3c). Every command runs from the bundle folder,
so the paths in it are relative to where the folder was copied.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..config import PPOConfig, RewardConfig

TRL_VERSION = "1.16.0"


def _scalar(value) -> str:
    """A YAML scalar: strings JSON-quoted; floats with a dot in the mantissa (YAML 1.1, which PyYAML reads, takes
    1e-05 for a string)."""
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value).split("e")[0]:
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa}.0e{exponent}"
    return json.dumps(value)


def _yaml(values: dict) -> str:
    """A YAML mapping of scalars and lists of mappings."""
    lines = []
    for key, value in values.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            for item in value:
                lines.append("  - " + "\n    ".join(f"{k}: {_scalar(v)}" for k, v in item.items()))
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def trl_recipes(info: dict) -> dict[str, dict]:
    """{command: TRL config} for the data and models this bundle has."""
    common = {"bf16": True, "logging_steps": 1, "report_to": "none", "save_strategy": "no",
              "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "num_train_epochs": 1}
    data = lambda name: [{"path": "json", "data_files": name, "split": "train"}]  # noqa: E731
    recipes = {}
    if info["files"].get("preferences.jsonl"):  # without an exported reward model TRL starts the head fresh
        start = "reward_model" if info["reward_model"] else "policy_merged"
        recipes["reward"] = {"model_name_or_path": start, "datasets": data("preferences.jsonl"),
                             "output_dir": "runs/trl-reward", "learning_rate": 1e-5, "max_length": 1024,
                             "center_rewards_coefficient": RewardConfig().center_coef, **common}
    if info["files"].get("preferences.jsonl"):
        recipes["dpo"] = {"model_name_or_path": "policy_merged", "datasets": data("preferences.jsonl"),
                          "output_dir": "runs/trl-dpo", "learning_rate": 5e-7, "beta": 0.1, "max_length": 1024,
                          **common}
    if info["files"].get("prompts.jsonl") and info["reward_model"]:
        recipes["grpo"] = {"model_name_or_path": "policy_merged", "reward_model_name_or_path": "reward_model",
                           "datasets": data("prompts.jsonl"), "output_dir": "runs/trl-grpo", "learning_rate": 1e-6,
                           "num_generations": 8, "max_completion_length": PPOConfig().max_new_tokens,
                           "beta": 0.04, **common}
    if info["files"].get("kto.jsonl"):
        recipes["kto"] = {"model_name_or_path": "policy_merged", "datasets": data("kto.jsonl"),
                          "output_dir": "runs/trl-kto", "learning_rate": 5e-7, **common}
    if info["files"].get("sft.jsonl"):
        recipes["sft"] = {"model_name_or_path": "policy_merged", "datasets": data("sft.jsonl"),
                          "output_dir": "runs/trl-sft", "learning_rate": 2e-5, **common}
    return recipes


def write_trl_recipes(folder: Path, info: dict) -> list[str]:
    (folder / "trl").mkdir(exist_ok=True)
    recipes = trl_recipes(info)
    for name, values in recipes.items():
        (folder / "trl" / f"{name}.yaml").write_text(_yaml(values))
    return list(recipes)


def _batch(n: int, cap: int) -> int:
    """The largest power of two <= min(n, cap) (at least 1): a batch no larger than the data."""
    size = 1
    while size * 2 <= min(n, cap):
        size *= 2
    return size


def openrlhf_commands(info: dict) -> str:
    rm = ("deepspeed --module openrlhf.cli.train_rm \\\n"
          "  --model.model_name_or_path $PWD/policy_merged --data.dataset $PWD/preferences.jsonl \\\n"
          "  --data.prompt_key prompt --data.chosen_key chosen --data.rejected_key rejected \\\n"
          "  --data.apply_chat_template --model.margin_loss_enable --data.max_len 1024 \\\n"
          "  --train.batch_size 64 --train.micro_batch_size 1 --train.max_epochs 1 --adam.lr 9e-6 \\\n"
          "  --ds.zero_stage 2 --ds.param_dtype bf16 --ckpt.output_dir $PWD/runs/openrlhf-rm")
    rollout = _batch(info["counts"].get("prompts", 1), 128)
    ppo = ("python3 -m openrlhf.cli.train_ppo_ray \\\n"
           "  --actor.model_name_or_path $PWD/policy_merged \\\n"
           "  --reward.model_name_or_path $PWD/reward_model --critic.model_name_or_path $PWD/reward_model \\\n"
           "  --data.prompt_dataset $PWD/prompts.jsonl --data.input_key prompt --data.apply_chat_template \\\n"
           "  --ref.num_nodes 1 --ref.num_gpus_per_node $GPUS --reward.num_nodes 1 --reward.num_gpus_per_node $GPUS \\\n"
           "  --critic.num_nodes 1 --critic.num_gpus_per_node $GPUS --actor.num_nodes 1 --actor.num_gpus_per_node $GPUS \\\n"
           "  --vllm.num_engines $GPUS --vllm.tensor_parallel_size 1 --train.colocate_all \\\n"
           f"  --rollout.batch_size {rollout} --rollout.n_samples_per_prompt 4 --train.batch_size {rollout * 4} \\\n"
           f"  --rollout.max_new_tokens {PPOConfig().max_new_tokens} --data.max_len 1024 \\\n"
           f"  --algo.kl.init_coef {PPOConfig().kl_coef} --actor.adam.lr 5e-7 --critic.adam.lr 9e-6 \\\n"
           "  --ds.zero_stage 3 --ds.param_dtype bf16 --ckpt.output_dir $PWD/runs/openrlhf-ppo --ckpt.save_hf")
    return rm, ppo


def verl_command(info: dict) -> str:
    train = info["counts"].get("verl_train", 1)
    batch = _batch(train, 256)
    val = "verl/test.parquet" if info["counts"].get("verl_test") else "verl/train.parquet"
    return ("python3 -m verl.trainer.main_ppo \\\n"
            "  algorithm.adv_estimator=gae \\\n"
            f"  data.train_files=$PWD/verl/train.parquet data.val_files=$PWD/{val} \\\n"
            f"  data.train_batch_size={batch} data.max_prompt_length={info['max_prompt_tokens']} "
            f"data.max_response_length={PPOConfig().max_new_tokens} \\\n"
            "  data.filter_overlong_prompts=True data.truncation=error data.return_raw_chat=True \\\n"
            "  actor_rollout_ref.model.path=$PWD/policy_merged actor_rollout_ref.actor.optim.lr=1e-6 \\\n"
            f"  actor_rollout_ref.actor.ppo_mini_batch_size={max(1, batch // 2)} "
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \\\n"
            "  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.tensor_model_parallel_size=1 \\\n"
            "  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4 \\\n"
            "  critic.model.path=$PWD/policy_merged critic.optim.lr=1e-5 critic.ppo_micro_batch_size_per_gpu=4 \\\n"
            "  reward_model.enable=True reward_model.model.path=$PWD/reward_model \\\n"
            "  reward_model.use_reward_loop=True reward_model.rollout.name=vllm \\\n"
            "  reward_model.rollout.tensor_model_parallel_size=1 \\\n"
            f"  algorithm.use_kl_in_reward=True algorithm.kl_ctrl.kl_coef={PPOConfig().kl_coef} \\\n"
            "  trainer.n_gpus_per_node=$GPUS trainer.nnodes=1 trainer.total_epochs=1 \\\n"
            f"  trainer.val_before_train={bool(info['counts'].get('verl_test'))} trainer.logger='[\"console\"]' \\\n"
            "  trainer.project_name=rlhf_lab trainer.experiment_name=" + info["session"])


def _files_table(info: dict) -> str:
    what = {"preferences.jsonl": "conversational prompt / chosen / rejected + margin (TRL reward, dpo; OpenRLHF "
                                 "train_rm, train_dpo)",
            "kto.jsonl": "prompt / completion / label (TRL kto)", "sft.jsonl": "prompt / completion (TRL sft)",
            "prompts.jsonl": "prompt messages (TRL grpo, rloo; OpenRLHF PPO)",
            "hh-rlhf.jsonl": "HH-RLHF text chosen / rejected", "verl/train.parquet": "veRL RL rows",
            "verl/test.parquet": "veRL RL rows (the reward model's held-out prompts)"}
    rows = [f"| `{name}` | {count} | {what[name]} |" for name, count in info["files"].items() if count is not None]
    models = {"policy_adapter/": "PEFT LoRA, task CAUSAL_LM", "reward_adapter/": "PEFT LoRA, task SEQ_CLS, `score` "
              "in modules_to_save", "policy_merged/": "full `*ForCausalLM`", "reward_model/": "full "
              "`*ForSequenceClassification`, num_labels=1"}
    rows += [f"| `{name}` | | {text} |" for name, text in models.items() if info["models"].get(name.rstrip("/"))]
    return "| path | rows | what |\n|---|---|---|\n" + "\n".join(rows)


VERL_TEMPLATE_NOTE = """veRL re-renders each conversation with `reward_model/`'s chat template (`reward_model.model.input_tokenizer`
defaults to the policy's): that template ends the conversation at the answer's end-of-turn token.
"""


def _no_ppo(info: dict) -> str:
    if not info["files"].get("prompts.jsonl"):
        return "# PPO needs prompts: rank some in the lab first"
    if not info.get("reward_skipped"):
        return "# PPO needs a reward model: train one in the lab first"
    fix = ("train one with --readout last in the lab" if info["reward_skipped"] == "readout"
           else "retrain it in the lab") + " and export again"
    if not info["files"].get("preferences.jsonl"):
        return (f"# PPO needs a reward model: the lab's was not exported (see Notes) and no preference pair was\n"
                f"# exported to train one on the cluster: {fix}")
    return ("# PPO needs a reward model: the lab's was not exported (see Notes). Train one from preferences.jsonl\n"
            f"# above (TRL reward, OpenRLHF train_rm) and point the reward model path at it, or {fix}")


def _reward_bullets(info: dict) -> str:
    """What LAUNCH.md says of reward_model/, or that there is none."""
    pad = f"`{info['pad_token']}`" + (" (added to the vocabulary)" if info["pad_added"] else "")
    if not info["reward_model"]:
        why = {"readout": "the lab's reward model reads the whole answer (see Notes)",
               "broken": "the lab's reward model could not be read (see Notes)"}.get(
            info.get("reward_skipped"), "the session has no reward model yet")
        return f"- No `reward_model/`: {why}. The pad token is {pad}.\n"
    return f"""- The reward is read where the lab reads it: on the end-of-turn token closing the answer. The pad token is
  {pad}, distinct from EOS, so a
  `*ForSequenceClassification` finds that token as the last non-pad one. {info['template_note']}
- The lab's reward head had a bias of {info['bias']:.6g}; `score` has none, so every exported reward is the
  lab's minus that constant (comparisons and PPO advantages are unchanged). The lab reads at most the last
  {RewardConfig().max_length} tokens of prompt + answer; longer texts are scored whole elsewhere.
"""


def launch_markdown(info: dict) -> str:
    """The whole of LAUNCH.md for one bundle."""
    rm, ppo = openrlhf_commands(info)
    has_pairs = bool(info["files"].get("preferences.jsonl"))
    has_ppo = bool(info["files"].get("prompts.jsonl")) and info["reward_model"]
    openrlhf = "\n".join(
        (["# a larger reward model, trained from the policy on these pairs (OpenRLHF starts its head fresh)", rm]
         if has_pairs else []) +
        (["# PPO: the lab's policy as actor, the exported reward model as reward and critic", ppo] if has_ppo else [])
    ) or "# nothing to run yet: the session has no preference pairs"
    if has_pairs and not has_ppo:
        openrlhf += "\n" + _no_ppo(info)
    verl = verl_command(info) if has_ppo else _no_ppo(info)
    trl = "\n".join(f"trl {name} --config trl/{name}.yaml --accelerate_config "
                    f"{'multi_gpu' if name == 'reward' else 'zero2'}" for name in info["recipes"])
    notes = "\n".join(f"- {w}" for w in info["warnings"]) or "- none"
    return f"""# Continuing session `{info['session']}` on a cluster

Written by `python -m rlhf_lab export`. Copy this folder to the machine you launch from, `cd` into it, and run
the commands below unchanged (they use paths relative to this folder). `GPUS` is the GPU count of one node.

{_files_table(info)}

## The models
- Base: `{info['base_id']}` (the session's model: `{info['lab_model']}`). The adapters name it as
  `base_model_name_or_path`. {info['base_note']}
- `policy_merged/` is policy version `{info['policy_version']}` merged into a {info['dtype']} copy of the base
  loaded unquantized{"; `reward_model/` likewise for the reward adapter" if info['reward_model'] else ""}. The lab
  trained at precision `{info['lab_precision']}`{'; merged into unquantized weights, scores and logits differ from the lab by that quantization error' if info['lab_precision'] == '4bit' else ''}.
{_reward_bullets(info)}- Pairs with an answer cut at max_new_tokens are left out of the preference, KTO and HH files
  ({info['dropped_cut']} pairs): the lab scores such answers without an end-of-turn token, which a
  conversational row cannot express.

## TRL {TRL_VERSION} (accelerate / DeepSpeed)
```bash
pip install trl=={TRL_VERSION}
{trl or '# no TRL recipe: the session has no preference pairs, KTO labels or demonstrations'}
```
The recipes in `trl/` hold the paths and hyperparameters; any flag on the command line overrides them.
`--accelerate_config` takes TRL's own configs (single_gpu, multi_gpu, zero1, zero2, zero3, fsdp1, fsdp2) or a file.

## OpenRLHF 0.11.0 (Ray + vLLM + DeepSpeed)
```bash
GPUS=8
{openrlhf}
```

## veRL 0.8.0.dev (Ray + FSDP + vLLM)
```bash
GPUS=8
{verl}
```
{VERL_TEMPLATE_NOTE if has_ppo else ""}
## Notes
{notes}
"""
