"""Launch the rlhf_lab web app: python app.py [--model M] [--session S] [--host H] [--port P]."""
from __future__ import annotations

import argparse
import sys
import time

START = time.time()


def parse(argv):
    p = argparse.ArgumentParser(description="rlhf_lab: rank, train a reward model, run PPO, in the browser.")
    p.add_argument("--model", default="default", help="'default' (embedded SmolLM2-135M-Instruct), a Hugging Face "
                                                      "id or a local folder")
    p.add_argument("--precision", default="4bit", choices=["4bit", "bf16", "fp32"])
    p.add_argument("--trust-remote-code", action="store_true", help="let the model folder run its own code")
    p.add_argument("--session", default="default", help="session to open (created if missing)")
    p.add_argument("--sessions-dir", default=None)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but 127.0.0.1 exposes the lab")
    p.add_argument("--port", type=int, default=7860)
    return p.parse_args(argv)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_warning(host: str) -> str | None:
    """The warning printed when the lab listens beyond this machine, or None for a local address."""
    if host in LOCAL_HOSTS:
        return None
    return (f"WARNING: listening on {host}: anyone who can reach this address can use the lab and read its "
            "sessions. Use 127.0.0.1 unless you mean it.")


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    import os

    from rlhf_lab.config import ModelConfig
    from rlhf_lab.lab import DEFAULT_SESSIONS, Lab
    from rlhf_lab.ui import CSS, HEAD, build_ui

    warning = host_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    cfg = ModelConfig(model=args.model, precision=args.precision, trust_remote_code=args.trust_remote_code)
    lab = Lab(args.sessions_dir or os.environ.get("RLHF_LAB_SESSIONS") or DEFAULT_SESSIONS, model_cfg=cfg)
    try:
        lab.open_session(args.session, create=True)
    except Exception as err:  # noqa: BLE001 - shown to the person as one line, then exit
        print(f"error: {err}", file=sys.stderr)
        return 2
    demo = build_ui(lab)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=args.host, server_port=args.port, share=False, css=CSS, head=HEAD,
                show_error=True, footer_links=[], quiet=True, prevent_thread_lock=True)
    print(lab.decode_note, flush=True)
    print(f"rlhf_lab ready in {time.time() - START:.1f}s at http://{args.host}:{args.port}", flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
