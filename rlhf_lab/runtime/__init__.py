"""The single model thread and the one-job-at-a-time runner with progress and cooperative Stop."""
