"""English–Turkish caption pairs from TSV, JSONL or `datasets` sources, read as a stream.

A source is one of:
- a TSV file: `english<TAB>turkish` per line, UTF-8, no header;
- a JSONL file (`.jsonl`/`.json`): one object per line with the English and Turkish fields;
- a folder written by `datasets`' `save_to_disk`, or a Hub dataset id (read with streaming).

Files are read line by line and never held whole. A malformed line raises `DataError` naming the
file and the line number; blank lines are skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

JSONL_SUFFIXES = (".jsonl", ".json")


class DataError(ValueError):
    """A data source that cannot be read as caption pairs; the message names file and line."""


@dataclass(frozen=True)
class PairSource:
    """Where pairs come from, and how to read them."""

    location: str
    english_column: str = "en"
    turkish_column: str = "tr"
    split: str = "train"
    revision: str | None = None

    @property
    def kind(self) -> str:
        path = Path(self.location)
        if path.is_dir():
            return "datasets-folder"
        if path.is_file():
            return "jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "tsv"
        if path.suffix.lower() in (".tsv", ".txt", *JSONL_SUFFIXES) or path.is_absolute():
            raise DataError(f"{self.location}: no such file")
        return "hub-dataset"

    def describe(self) -> str:
        """A name for the model card: a Hub id in full, a local path by its last part only."""
        if self.kind == "hub-dataset":
            return f"`{self.location}` (split `{self.split}`)"
        return f"local {self.kind} `{Path(self.location).name}`"


def read_pairs(source: PairSource) -> Iterator[tuple[str, str]]:
    """(english, turkish) pairs in file order; raises `DataError` if a line is malformed."""
    readers = {
        "tsv": _tsv_pairs,
        "jsonl": _jsonl_pairs,
        "datasets-folder": _dataset_pairs,
        "hub-dataset": _dataset_pairs,
    }
    yield from readers[source.kind](source)


def fingerprint(source: PairSource) -> str:
    """A digest that changes whenever the pairs could: file contents, or the dataset's name."""
    digest = hashlib.sha256()
    digest.update(json.dumps([source.kind, source.english_column, source.turkish_column]).encode())
    kind = source.kind
    if kind in ("tsv", "jsonl"):
        _hash_file(digest, Path(source.location))
    elif kind == "datasets-folder":
        root = Path(source.location)
        digest.update(source.split.encode())
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode())
            _hash_file(digest, path)
    else:
        digest.update(json.dumps([source.location, source.split, source.revision]).encode())
    return digest.hexdigest()


def _hash_file(digest, path: Path) -> None:
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Line numbers (from 1) and decoded lines without their line ending; blank lines skipped."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                where = f"{path}, line {number}"
                raise DataError(f"{where}: not valid UTF-8 ({error.reason})") from None
            if number == 1:
                line = line.removeprefix("\ufeff")
            if line.strip():
                yield number, line


def _tsv_pairs(source: PairSource) -> Iterator[tuple[str, str]]:
    path = Path(source.location)
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"{path}, line {number}: expected 'english<TAB>turkish' (2 fields), found "
                f"{len(fields)} field(s): {line[:60]!r}"
            )
        yield _checked(fields[0], fields[1], f"{path}, line {number}")


def _jsonl_pairs(source: PairSource) -> Iterator[tuple[str, str]]:
    path = Path(source.location)
    for number, line in _lines(path):
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not a JSON object ({error.msg}): {line[:60]!r}") from None
        yield _checked_record(record, source, where)


def _dataset_pairs(source: PairSource) -> Iterator[tuple[str, str]]:
    for number, record in enumerate(_open_dataset(source), start=1):
        yield _checked_record(record, source, f"{source.location}, row {number}")


def _open_dataset(source: PairSource):
    import datasets

    if source.kind == "hub-dataset":
        return datasets.load_dataset(
            source.location, split=source.split, revision=source.revision, streaming=True
        )
    loaded = datasets.load_from_disk(source.location)  # memory-mapped Arrow, not read whole
    if isinstance(loaded, datasets.DatasetDict):
        if source.split not in loaded:
            raise DataError(
                f"{source.location}: no split {source.split!r} (has {', '.join(loaded)})"
            )
        loaded = loaded[source.split]
    return loaded


def _checked_record(record: object, source: PairSource, where: str) -> tuple[str, str]:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object, found {type(record).__name__}")
    missing = [c for c in (source.english_column, source.turkish_column) if c not in record]
    if missing:
        raise DataError(f"{where}: no field {missing[0]!r} (fields: {', '.join(record)})")
    return _checked(record[source.english_column], record[source.turkish_column], where)


def _checked(english: object, turkish: object, where: str) -> tuple[str, str]:
    for language, text in (("English", english), ("Turkish", turkish)):
        if not isinstance(text, str):
            raise DataError(f"{where}: the {language} caption is {type(text).__name__}, not text")
        if not text.strip():
            raise DataError(f"{where}: the {language} caption is empty")
    return english, turkish
