"""File names in index files, losslessly.

Inside the program a name is a `str` as `os` gives it: names that are not valid UTF-8 (a zip
made on Windows with cp857 names, unpacked on Linux) carry Python's surrogate escapes. On disk
every name is valid JSON text: such a name is written as `path_bytes` (base64 of the exact
bytes) beside a readable `path` with U+FFFD where bytes were not UTF-8.
"""

import base64
import binascii
import os


def name_fields(name: str) -> dict[str, str]:
    """`{"path": name}`, or `{"path": readable, "path_bytes": base64}` for a non-UTF-8 name."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        return {
            "path": raw.decode("utf-8", "replace"),
            "path_bytes": base64.b64encode(raw).decode("ascii"),
        }
    return {"path": name}


def name_from_fields(fields: dict) -> str:
    """The inverse of `name_fields`; raises ValueError on a malformed `path_bytes`."""
    if "path_bytes" not in fields:
        return fields["path"]
    encoded = fields["path_bytes"]
    if not isinstance(encoded, str):
        raise ValueError("path_bytes must be a base64 string")
    try:
        return os.fsdecode(base64.b64decode(encoded, validate=True))
    except binascii.Error:
        raise ValueError(f"path_bytes {encoded[:40]!r} is not base64") from None
