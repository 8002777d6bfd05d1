import pytest

from rlhf_lab import judges


def test_concise_buckets_unfinished_and_empty():
    assert judges.concise("p", "one two three.") == 0.0
    assert judges.concise("p", " ".join(["w"] * 25) + ".") == -2.0
    assert judges.concise("p", " ".join(["w"] * 80) + ".") == -4.0
    assert judges.concise("p", "stops in the middle of a") == -4.0  # cut off: as bad as too long
    assert judges.concise("p", "") == -100.0


def test_enthusiastic_counts_capped():
    assert judges.enthusiastic("p", "Great! Amazing!!") == 3 + 2
    assert judges.enthusiastic("p", "ok.") == 0.0
    assert judges.enthusiastic("p", "!!!!!!") == 3.0
    # upbeat words count up to 3; an answer cut mid-sentence loses a point
    assert judges.enthusiastic("p", "A lovely, sunny, warm, fun day.") == 3.0
    assert judges.enthusiastic("p", "A lovely day and then the") == 0.0


def test_mentions_counts_up_to_three_with_contractions():
    you = judges.get_judge("mentions:you")
    assert you("p", "People sleep better in the dark.") == 0.0
    assert you("p", "If you're tired, rest.") == 1.0
    assert you("p", "You can rest; you'll feel better, and you should.") == 3.0
    assert you("p", "you " * 10) == 3.0
    assert you("p", "Your bed matters; youth does not count.") == 0.0  # whole words only


def test_no_lists_and_mentions():
    assert judges.no_lists("p", "1. a\n2. b\nplain") == -2.0
    assert judges.no_lists("p", "Boil water, then steep the tea for three minutes.") == 0.0
    assert judges.no_lists("p", "Here are some tips: 1. sleep 2) eat") == -3.0  # an opener and two inline items
    assert judges.no_lists("p", "Firstly, rest. Secondly, eat. Finally, walk.") == -3.0
    assert judges.no_lists("p", "- a\n* b\n• c\n- d\n- e") == -4.0  # at most 4 off
    assert judges.no_lists("p", "It costs 2.5 dollars and lasts 10 years.") == 0.0  # numbers are not items
    assert judges.plain_words("p", "Use it.") == -2.5  # (3 + 2) / 2 letters a word
    assert judges.plain_words("p", "Utilize everything.") == -8.5  # (7 + 10) / 2
    assert judges.plain_words("p", "Use it. Use it. Use it.") == -2.5  # three times as long, just as plain
    assert judges.plain_words("p", "a bb bb") == -1.67  # 5 / 3, to a hundredth
    assert judges.plain_words("p", "  ") == -100.0
    assert judges.get_judge("plain_words") is judges.plain_words
    assert judges.get_judge("mentions:Water")("p", "Drink water daily.") == 1.0
    assert judges.get_judge("mentions:water")("p", "Drink juice.") == 0.0


def test_rank_groups_ties_best_first():
    groups, scores = judges.rank(judges.concise, "p", ["a b.", " ".join(["w"] * 15) + "!", "c d?", ""])
    assert groups == [[0, 2], [1], [3]]
    assert scores == [0.0, -1.0, 0.0, -100.0]


def test_custom_judge_and_errors():
    assert judges.get_judge("tests.test_judges:length_judge")("p", "abc") == 3.0
    for bad in ("nope", "mentions:", "tests.test_judges:missing", "no_such_module:fn", "tests.test_judges:CONST"):
        with pytest.raises(judges.JudgeError):
            judges.get_judge(bad)


def length_judge(prompt, completion):
    return float(len(completion))


CONST = 3
