"""Models: loading (4-bit where bitsandbytes can), quantization workarounds, the trunk split, named adapters
with heads, and checkpoints as standard PEFT folders."""
