"""The rejection rules: empty, one word looping, far longer than the caption."""

import pytest

from translation.quality import rejection
from translation.split import in_evaluation


@pytest.mark.parametrize(
    ("source", "translation", "reason"),
    [
        ("a cat on a mat", "", "empty"),
        ("a cat on a mat", "   ", "empty"),
        ("a cat on a mat", "kedi kedi kedi kedi", "repeated"),
        ("a cat", "bir kedi bir kedi bir kedi", "too long"),  # 26 > 3 x 5 characters
        ("a cat on a mat", "paspasın üzerinde bir kedi", None),
        ("two dogs", "iki iki iki köpek", None),  # three in a row is still a caption
    ],
)
def test_rejection(source, translation, reason):
    assert rejection(source, translation) == reason


def test_the_length_limit_is_three_times_the_caption():
    assert rejection("abcde", "x" * 15) is None
    assert rejection("abcde", "x" * 16) == "too long"


def test_the_split_draws_about_the_fraction_and_is_the_same_every_time():
    groups = [f"image {number}" for number in range(4000)]
    drawn = [group for group in groups if in_evaluation(group, 0.1)]
    assert 320 < len(drawn) < 480
    assert drawn == [group for group in groups if in_evaluation(group, 0.1)]
    assert not any(in_evaluation(group, 0.0) for group in groups)
