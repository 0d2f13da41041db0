"""Which translations stay out of the corpus: empty ones, and the degenerate output a
translation model gives when it loops."""

MAX_LENGTH_RATIO = 3.0  # a caption's translation is seldom more than 3x as long as the caption
MAX_REPEATS = 3  # the same word more than 3 times in a row is a loop, not a caption


def rejection(source: str, translation: str) -> str | None:
    """Why `translation` of `source` is rejected ("empty", "repeated", "too long"), or None."""
    words = translation.split()
    if not words:
        return "empty"
    run = 1
    for previous, word in zip(words, words[1:]):
        run = run + 1 if word == previous else 1
        if run > MAX_REPEATS:
            return "repeated"
    if len(translation) > MAX_LENGTH_RATIO * len(source):
        return "too long"
    return None
