"""Pure training steps and RLHF math: no sessions, threads or gradio."""
