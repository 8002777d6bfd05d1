"""Comparing policy versions: evaluation against the reference with a judge (later: blind arena votes)."""
