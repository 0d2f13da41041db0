"""Every command's --help: each option is explained, and each option with a default says it."""

import argparse

import pytest

import app
import cli
import dataset
import hub_upload
import train
from terminal.arguments import number_in


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    tops = {
        "cli.py": cli.build_parser(),
        "train.py": train.parser(),
        "hub_upload.py": hub_upload._parser(),
        "app.py": app.build_parser(),
        "dataset.py": dataset.build_parser(),
    }
    found = []
    for name, parser in tops.items():
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return found


PARSERS = _parsers()


def _option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    return " ".join(formatter._expand_help(action).split()) if action.help else ""


@pytest.mark.parametrize("name, parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_every_option_is_explained_with_its_default(name: str, parser) -> None:
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        shown = _option_help(parser, action)
        assert shown, f"{name} {action.option_strings[0]} has no help"
        has_default = action.default not in (None, [], argparse.SUPPRESS)
        if action.required:
            assert "(required)" in shown, (name, action.option_strings)
        elif has_default and not isinstance(action.default, bool):
            assert "default" in shown, (name, action.option_strings, shown)


def test_help_shows_the_defaults_named_in_the_options(capsys) -> None:
    for argv, expected in [
        (["search", "--help"], "results per query (default: 10)"),
        (["index", "--help"], "images per model call (default: 32)"),
        (["index", "--help"], "(default: 100000)"),
    ]:
        assert cli.main(argv) == 0
        assert expected in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "kind, accepted, refused",
    [
        (number_in(0, 1, low_open=True, what="a recall"), ["1", "0.5", "1e-9"], ["0", "1.01"]),
        (number_in(-1, 1, what="a cosine similarity"), ["-1", "1", "0"], ["-1.5", "2"]),
        (number_in(0, 1, low_open=True, high_open=True, what="a fraction"), ["0.1"], ["0", "1"]),
    ],
)
def test_number_in_keeps_its_bounds(kind, accepted: list[str], refused: list[str]) -> None:
    assert [kind(text) for text in accepted] == [float(text) for text in accepted]
    for text in [*refused, "nan", "inf", "many", ""]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got {text}$"):
            kind(text)


def test_number_in_names_the_range_in_its_refusal(capsys) -> None:
    assert cli.main(["search", "kedi", "--recall", "0"]) == 2
    assert "--recall: must be a recall above 0 and at most 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dataset.build_parser().parse_args(["translate", "--eval-fraction", "1"])
    assert "must be a fraction above 0 and below 1, got 1" in capsys.readouterr().err
