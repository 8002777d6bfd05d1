"""The Compare tab without a browser or a model: it builds with its buttons and shortcuts, and draws the
leaderboard, the win-rate matrix and the advice from stored votes."""
from dataclasses import asdict

from rlhf_lab.config import ModelConfig
from rlhf_lab.data import votes as store
from rlhf_lab.data.session import Session
from rlhf_lab.lab import Lab
from rlhf_lab.ui import HEAD, build_ui
from rlhf_lab.ui.compare_tab import board_frames, plain


def records_lab(tmp_path):
    Session.create(tmp_path, "s", asdict(ModelConfig()))
    lab = Lab(tmp_path)
    lab.open_session("s", with_model=False)
    lab.model_cfg = ModelConfig()
    return lab


def add_votes(lab, verdicts, annotator="human"):
    recs = [store.make_vote("p", store.side("v001", "short.", 3), store.side("base", "a longer answer.", 9), v,
                            annotator) for v in verdicts]
    store.append_votes(lab.session.root, recs)


def test_compare_tab_builds_with_vote_buttons_and_shortcuts(tmp_path):
    demo = build_ui(Lab(tmp_path))
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert {"lab-arena-draw", "lab-vote-a", "lab-vote-b", "lab-vote-tie", "lab-vote-bad", "lab-arena-undo",
            "lab-arena-board", "lab-arena-winrate", "lab-arena-advice", "lab-arena-run", "lab-arena-stop"} <= ids
    for button in ("'lab-vote-a'", "'lab-vote-b'", "'lab-vote-tie'", "'lab-vote-bad'", "'lab-arena-draw'",
                   "'lab-arena-undo'"):
        assert button in HEAD
    assert "getClientRects" in HEAD  # only the visible tab's button is clicked


def test_board_frames_from_votes(tmp_path):
    lab = records_lab(tmp_path)
    board, matrix, advice = board_frames(lab, "all")
    assert board.empty and "No votes yet" in advice
    add_votes(lab, ["A"] * 5 + ["B", "tie"])
    add_votes(lab, ["B"], annotator="judge:concise")
    board, matrix, advice = board_frames(lab, "all")
    assert list(board["version"]) == ["v001", "base"] and list(board["votes"]) == [8, 8]
    assert board.iloc[1]["rating"] == 1000 and board.iloc[0]["rating"] > 1000
    assert list(matrix.columns) == ["row beats column →", "v001", "base"]
    assert matrix.iloc[0]["base"] == "0.69 (8)" and matrix.iloc[0]["v001"] == "—"  # 5.5 of 8 points
    assert advice.startswith("8 votes (all)")
    human, _, advice = board_frames(lab, "human")
    assert list(human["votes"]) == [7, 7] and advice.startswith("7 votes (human)")
    assert lab.voters() == ["human", "judge:concise"]


def test_prompts_in_status_lines_are_text():
    assert plain("**x** <b>") == r"\*\*x\*\* \<b\>"
    assert plain("y" * 300).endswith("…") and len(plain("y" * 300)) == 201
