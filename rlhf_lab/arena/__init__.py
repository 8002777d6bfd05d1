"""Comparing policy versions: evaluation against the reference with a judge, and blind A/B votes rated by a
Bradley–Terry leaderboard (ratings, leaderboard, matches), plus BT scores of ranked answers."""
