"""The export bundle's models reproduce the lab: standard PEFT folders and merged models, loaded the way other
tools load them (tiny fp32 llama built in code; its adapters hold random non-zero weights, a head with a bias)."""
import json

import pytest
import torch
from safetensors.torch import load_file

from export_session import HEAD_BIAS, PROMPTS
from rlhf_lab.config import RewardConfig
from rlhf_lab.generation.chat import tokenize_pairs
from rlhf_lab.modeling.adapters import POLICY

ANSWERS = [(PROMPTS[0], "Water falling from clouds."), (PROMPTS[4], "Ja \u2029 ✓")]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]  # not splitlines:
    # the texts hold U+2028 / U+2029


def lab_sequences(models):
    return [tokenize_pairs(models.tokenizer, [p], [a], models.device) for p, a in ANSWERS]


@torch.no_grad()
def lab_policy_logits(models, ids, mask):
    with models.adapter(POLICY):
        return models.logits(models.hidden(ids, mask))


@torch.no_grad()
def max_logit_gap(model, models) -> float:
    return max((model(input_ids=ids, attention_mask=mask).logits - lab_policy_logits(models, ids, mask)).abs().max()
               .item() for ids, mask in lab_sequences(models))


def test_policy_adapter_on_the_base_gives_the_lab_policy(exported):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(exported.tiny_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, exported.out / "policy_adapter").eval()
    assert max_logit_gap(model, exported.lab.models) < 1e-4
    with model.disable_adapter():  # the check can fail: the base alone is another model
        assert max_logit_gap(model, exported.lab.models) > 1e-2


def test_policy_merged_gives_the_lab_policy(exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(exported.out / "policy_merged").eval()
    assert max_logit_gap(model, exported.lab.models) < 1e-4
    tokenizer = AutoTokenizer.from_pretrained(exported.out / "policy_merged")
    assert tokenizer.chat_template and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id


def engine_and_lab_rows(exported):
    """Each exported answer as the reward model's own chat template tokenizes it, and the lab's reward of it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exported.out / "reward_model")
    models = exported.lab.models
    rows = read_jsonl(exported.out / "preferences.jsonl")
    engine, lab = [], []
    for row in rows:
        for side in ("chosen", "rejected"):
            ids = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True, return_dict=True)["input_ids"]
            lab_ids, mask = tokenize_pairs(models.tokenizer, [row["prompt"][-1]["content"]], [row[side][0]["content"]],
                                           models.device, RewardConfig().max_length)
            assert ids == lab_ids[0].tolist()  # same tokens, so the score is read at the lab's token
            engine.append(ids)
            with torch.no_grad():
                lab.append(models.score(lab_ids, mask).item())
    return tokenizer, engine, torch.tensor(lab)


def right_padded(rows: list[list[int]], pad: int):
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def test_reward_model_gives_the_lab_reward_up_to_the_dropped_bias(exported):
    from transformers import AutoModelForSequenceClassification

    tokenizer, engine, lab = engine_and_lab_rows(exported)
    model = AutoModelForSequenceClassification.from_pretrained(exported.out / "reward_model").eval()
    assert model.config.num_labels == 1 and model.config.pad_token_id == tokenizer.pad_token_id
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    # SmolLM2's BOS opens every conversation but is never added by its tokenizer: veRL would strip it
    assert tokenizer.bos_token is None and tokenizer.decode(engine[0]).startswith("<|im_start|>system")
    ids, mask = right_padded(engine, tokenizer.pad_token_id)  # batched as TRL pads: the read-out must skip pads
    with torch.no_grad():
        scores = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert len(lab) == 12 and lab.std() > 1e-2
    assert torch.allclose(lab - scores, torch.full_like(lab, HEAD_BIAS), atol=1e-4)
    assert exported.result["bias"] == pytest.approx(HEAD_BIAS)
    assert exported.result["read_mismatches"] == 0


def test_reward_adapter_holds_its_score_head(exported):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    folder = exported.out / "reward_adapter"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and config["modules_to_save"] == ["score"]
    tensors = load_file(folder / "adapter_model.safetensors")
    assert torch.equal(tensors["base_model.model.score.weight"], exported.lab.models.reward_head.weight.detach())

    tokenizer, engine, lab = engine_and_lab_rows(exported)
    ids, mask = right_padded(engine, tokenizer.pad_token_id)
    base = AutoModelForSequenceClassification.from_pretrained(exported.tiny_dir, num_labels=1,
                                                              pad_token_id=tokenizer.pad_token_id).eval()
    with torch.no_grad():
        random_head = base(input_ids=ids, attention_mask=mask).logits[:, 0]
        scores = PeftModel.from_pretrained(base, folder).eval()(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert torch.allclose(lab - scores, torch.full_like(lab, HEAD_BIAS), atol=1e-4)
    assert not torch.allclose(lab - random_head, torch.full_like(lab, HEAD_BIAS), atol=1e-2)  # PR #1342's pitfall


def test_adapters_name_their_base_and_no_path_of_this_machine(exported):
    policy = json.loads((exported.out / "policy_adapter" / "adapter_config.json").read_text())
    assert policy["task_type"] == "CAUSAL_LM"
    for folder in ("policy_adapter", "reward_adapter"):
        config = json.loads((exported.out / folder / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == exported.tiny_dir.name
    machine = str(exported.tiny_dir.parent)
    for folder in ("policy_adapter", "reward_adapter", "policy_merged", "reward_model"):
        for path in (exported.out / folder).iterdir():
            if path.suffix in (".json", ".md", ".jinja"):
                assert machine not in path.read_text(), path


def test_default_model_is_named_by_its_hub_id(tmp_path):
    from rlhf_lab.exports.adapters import base_model_id

    assert base_model_id("default", "/anything") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_model_id("org/model", "org/model") == "org/model"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text('{"_name_or_path": "org/base-7b"}')
    assert base_model_id(str(tmp_path / "mine"), str(tmp_path / "mine")) == "org/base-7b"
    (tmp_path / "mine" / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path)}))
    assert base_model_id(str(tmp_path / "mine"), str(tmp_path / "mine")) == "mine"


def test_every_file_is_readable_by_others(exported):
    from rlhf_lab.data.files import current_umask

    mask = current_umask()
    paths = list(exported.out.rglob("*")) + list((exported.lab.session.root / "adapters").rglob("*"))
    assert any(p.suffix == ".safetensors" for p in paths)
    for path in [exported.out] + paths:
        assert path.stat().st_mode & 0o777 == (0o777 if path.is_dir() else 0o666) & ~mask, path


def test_a_pad_token_is_added_when_the_vocabulary_has_no_spare_one(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from rlhf_lab.exports.conversation import Conversation
    from rlhf_lab.exports.merged import export_tokenizer, save_full_model
    from rlhf_lab.exports.tokenizer import NEW_PAD, pad_token_for

    vocab = {"<eos>": 0, "a": 1, "b": 2}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="a"))
    PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<eos>").save_pretrained(tmp_path / "t")
    tokenizer = export_tokenizer(str(tmp_path / "t"), False, NEW_PAD)
    assert pad_token_for(PreTrainedTokenizerFast.from_pretrained(tmp_path / "t"), Conversation(None, False)) == (
        NEW_PAD, True)
    assert len(tokenizer) == 4 and tokenizer.pad_token_id == 3
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=3, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1)).eval()
    ids = torch.tensor([[1, 2, 0]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    save_full_model(model, tokenizer, tmp_path / "m", "fp32", "tiny")
    saved = LlamaForCausalLM.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        after = saved(input_ids=ids).logits
    assert saved.config.vocab_size == 4 and saved.config.pad_token_id == 3
    assert torch.allclose(after[..., :3], before, atol=1e-6)


@pytest.mark.slow
def test_a_default_model_session_exports_with_its_hub_name_and_reward(tmp_path):
    """The embedded SmolLM2, loaded at fp32 so the lab and the export compute the same thing: the adapters name
    the hub model, SmolLM2's EOS-as-pad is replaced, and reward_model/ gives the lab's rewards minus the bias."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlhf_lab.config import ModelConfig
    from rlhf_lab.lab import Lab
    from rlhf_lab.modeling import checkpoints
    from rlhf_lab.modeling.adapters import REWARD

    lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(precision="fp32", fast_decode=False))
    lab.create_session("real")
    texts = ["Rain is water that falls from clouds when droplets grow heavy.", "Rain."]
    lab.rank(PROMPTS[0], texts, [[0], [1]])
    torch.manual_seed(0)
    with torch.no_grad():
        for param in lab.models.lora_params(REWARD, "lora_B"):
            param.normal_(0.0, 0.02)
        lab.models.reward_head.weight.normal_(0.0, 0.05)
        lab.models.reward_head.bias.fill_(HEAD_BIAS)
    lab.models.readouts[REWARD] = "last"  # the read-out a *ForSequenceClassification reproduces
    checkpoints.save_adapter(lab.models, REWARD, lab.session.adapter_dir("reward"))
    lab.session.update_meta(reward_model={"trained_at": 1.0})
    lab_scores = torch.tensor(lab.score(PROMPTS[0], texts))
    result = lab.export_bundle(tmp_path / "out")

    out = tmp_path / "out"
    config = json.loads((out / "reward_adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert result["pad_token"] == "<|endoftext|>" and result["read_mismatches"] == 0
    assert "policy_adapter" not in result["models"] and (out / "policy_merged" / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(out / "reward_model")
    model = AutoModelForSequenceClassification.from_pretrained(out / "reward_model").eval()
    system = {"role": "system", "content": result["system_prompt"]}
    rows = [tokenizer.apply_chat_template([system, {"role": "user", "content": PROMPTS[0]},
                                           {"role": "assistant", "content": t}], tokenize=True,
                                          return_dict=True)["input_ids"] for t in texts]
    with torch.no_grad():
        exported = torch.stack([model(input_ids=torch.tensor([r])).logits[0, 0] for r in rows])
    assert torch.allclose(lab_scores - HEAD_BIAS, exported, atol=1e-3), (lab_scores, exported)
