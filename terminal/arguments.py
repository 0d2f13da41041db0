"""What every command's arguments share: help that ends with each option's default, and the
number types whose refusals argparse prints as usage errors."""

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default; required options say so, and options whose
    absence means something (None) or flags say it in their own words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required:
            return f"{text} (required)".strip()
        if action.default in (None, []) or isinstance(action.default, bool) or "default" in text:
            return text  # absence or a flag said in the help's own words, or its default already
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_float(text: str, unit: str = "a number") -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be {unit} >= 0, got {text}")
    return value


def number_in(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False, what: str
):
    """An argparse type for a number between `low` and `high`, each bound included unless it is
    open; the refusal names the range in the option's own terms."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):  # both false for nan
            lower = f"above {low:g}" if low_open else f"at least {low:g}"
            upper = f"below {high:g}" if high_open else f"at most {high:g}"
            raise argparse.ArgumentTypeError(f"must be {what} {lower} and {upper}, got {text}")
        return value

    return parse
