"""Names printed safely: one line of printable characters for people, exact JSON for programs."""

import json
import os
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from terminal.escaping import json_line, printable

# What a hostile or merely unlucky file name holds: escape sequences, carriage returns, line and
# paragraph separators, a C1 control (U+0085, "…" mis-decoded), bidirectional overrides, DEL,
# and bytes that are not UTF-8 as os.fsdecode carries them.
HOSTILE = ["\x1b", "[", "\r", "\n", "\t", "\u2028", "\u2029", "\x85", "\x9b", "\u202e", "\x7f"]
HOSTILE += ["\x00", "\x0b", "\x1c", "\udcff", "\udc80", "\ud800"]
ANY_TEXT = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=[]), st.sampled_from(HOSTILE))
)
UNSAFE_IN_JSON = {"Cc", "Cs", "Zl", "Zp"}


@given(ANY_TEXT)
@example("kedi\x1b[31m\r\n\u2028\x85.jpg")
def test_printable_is_one_line_of_printable_characters(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()  # no controls, separators, surrogates or format characters
    assert len(shown.splitlines()) <= 1
    shown.encode("utf-8")  # strict: any Unicode terminal can take it


@given(st.text(alphabet=st.characters(exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"])))
def test_printable_names_are_left_alone(text: str) -> None:
    if text.isprintable():
        assert printable(text) == text


def test_escapes_read_as_python_writes_them() -> None:
    name = os.fsdecode(b"caf\xe9 \xc3\xa7ay\x1b[31m\r\n\xe2\x80\xa8\xc2\x85\xe2\x80\xae.jpg")
    assert printable(name) == "caf\\xe9 çay\\x1b[31m\\r\\n\\u2028\\x85\\u202e.jpg"
    assert printable(os.fsdecode(b"\xff")) == "\\xff"  # the byte itself, not U+00FF
    assert printable("\U000e0001") == "\\U000e0001"
    assert printable(os.path.join("/tmp", "a\nb")) == "/tmp/a\\nb"


@given(ANY_TEXT)
@example(os.fsdecode(b"foto\xf0\x28\x8c\x28\n.jpg"))
def test_json_line_round_trips_on_one_safe_line(text: str) -> None:
    line = json_line({"image": text, "labels": [{"label": text, "score": 0.5}]})
    assert json.loads(line) == {"image": text, "labels": [{"label": text, "score": 0.5}]}
    assert len(line.splitlines()) == 1
    assert not {unicodedata.category(char) for char in line} & UNSAFE_IN_JSON
    line.encode("utf-8")


@given(st.binary(min_size=1).filter(lambda name: b"/" not in name and b"\0" not in name))
def test_file_names_of_any_bytes_come_back_exact(raw: bytes) -> None:
    name = os.fsdecode(raw)
    assert os.fsencode(json.loads(json_line(name))) == raw
    assert printable(name).isprintable()
