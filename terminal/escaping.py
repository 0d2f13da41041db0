"""File names and messages made safe for a terminal, and JSON lines that keep them exact.

A file name can hold anything but `/` and NUL: escape sequences that recolour or rewrite the
terminal (`\\x1b[...`), carriage returns that hide what came before, line and paragraph
separators, and bytes that are not UTF-8 (which Python carries as lone surrogates and which
`print` refuses to encode). `printable` shows such characters as Python's escapes, on one line;
`json_line` keeps the exact name, JSON-escaped.
"""

import json
import re

# The lone surrogates by which os.fsdecode carries the bytes of a name that is not UTF-8.
_SURROGATE_BYTES = range(0xDC80, 0xDD00)
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Characters json.dumps leaves raw (it escapes only C0 controls) that a terminal acts on, that end
# a line for str.splitlines, or that no text encoder can write: DEL, C1 controls, line and
# paragraph separators, lone surrogates.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: object) -> str:
    """`text` (a str or a path) with every character Python does not consider printable escaped.

    Those are the characters `repr` escapes: controls, line and paragraph separators, format
    characters (bidirectional overrides among them), unassigned code points, and spaces other
    than the plain space. A byte that was not UTF-8 shows as `\\xNN`. Everything else, Turkish
    letters included, is left as it is.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def json_line(data: object, indent: int | None = None) -> str:
    """`data` as JSON that any terminal, any text encoding and any line splitter can carry: one
    line unless `indent` is given.

    Names come back exact through `json.loads`, including those that are not UTF-8 (as the same
    lone surrogates `os.fsdecode` gives, which `os.fsencode` turns back into the original bytes).
    """
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _escape(char: str) -> str:
    code = ord(char)
    if code in _SURROGATE_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
