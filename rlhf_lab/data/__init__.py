"""Records on disk and the pure logic over them. No torch, no threads, no gradio."""
