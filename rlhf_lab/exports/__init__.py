"""Hand-off to the ecosystem: a session as files that TRL, OpenRLHF, veRL and any `from_pretrained` read unchanged.

One module per format: conversation (how prompts and answers become messages), preferences, kto, sft, prompts,
hh_rlhf, verl (data); tokenizer (pad token, where the reward is read), adapters (standard PEFT folders),
merged (full models), launch (LAUNCH.md and TRL recipes); files writes the bundle whole or not at all.
"""
