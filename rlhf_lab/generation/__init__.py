"""Chat templates and prompt checks (chat.py); the decode loop that returns a Rollout (decode.py)."""
