"""English captions from the inputs `dataset.py translate` reads, in file order.

- a COCO captions file as published (`captions_train2017.json`: an object whose `annotations`
  hold `image_id` and `caption`); each caption's group is its image, so a split keeps images apart;
- a JSON Lines file (`.jsonl`, or a `.json` file of one object per line) with the caption in
  `column`;
- a TSV file (`.tsv`) whose header line names its columns, the caption in `column`;
- a plain text file (any other suffix): one caption a line;
- a folder written by `datasets`' `save_to_disk`, or a Hub dataset id (streamed), with the
  caption in `column`.

Captions keep their words but not their layout: runs of whitespace (tabs and newlines included,
which the pairs format cannot hold) become one space. Blank captions are skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from translation.errors import TranslationError

DEFAULT_COLUMN = "caption"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Caption:
    """One English caption; `group` is what a split keeps on one side (COCO: the image)."""

    text: str
    group: str


@dataclass(frozen=True)
class CaptionInput:
    location: str
    column: str = DEFAULT_COLUMN
    split: str = "train"

    @property
    def kind(self) -> str:
        path = Path(self.location)
        if path.is_dir():
            return "datasets-folder"
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix == ".json":
                return "json"
            if suffix in JSON_LINES_SUFFIXES:
                return "jsonl"
            return "tsv" if suffix == ".tsv" else "text"
        if path.suffix or path.is_absolute() or self.location.startswith("."):
            raise TranslationError(f"{self.location}: no such file")
        return "hub-dataset"

    def fingerprint(self) -> str:
        """Changes whenever the captions could: a file's bytes, or the dataset's name and split."""
        digest = hashlib.sha256(json.dumps([self.kind, self.column, self.split]).encode())
        path = Path(self.location)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        if self.kind == "hub-dataset":
            digest.update(self.location.encode())
            files = []
        for file in files:
            digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
            with file.open("rb") as opened:
                for block in iter(lambda: opened.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def read_captions(source: CaptionInput) -> Iterator[Caption]:
    """The source's captions in order; raises `TranslationError` naming file and line."""
    readers = {
        "json": _json_captions,
        "jsonl": _jsonl_captions,
        "tsv": _tsv_captions,
        "text": _text_captions,
        "datasets-folder": _dataset_captions,
        "hub-dataset": _dataset_captions,
    }
    for caption in readers[source.kind](source):
        if caption.text:
            yield caption


def normalised(text: str) -> str:
    return " ".join(text.split())


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Line numbers (from 1) and lines without their ending; a byte order mark is dropped."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise TranslationError(
                    f"{path}, line {number}: not valid UTF-8 ({error.reason})"
                ) from None
            yield number, line.removeprefix("\ufeff") if number == 1 else line


def _text_captions(source: CaptionInput) -> Iterator[Caption]:
    for _, line in _decoded_lines(Path(source.location)):
        text = normalised(line)
        yield Caption(text, text)


def _jsonl_captions(source: CaptionInput) -> Iterator[Caption]:
    path = Path(source.location)
    for number, line in _decoded_lines(path):
        if line.strip():
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise TranslationError(f"{where}: not a JSON object ({error.msg})") from None
            yield _record_caption(record, source.column, where)


def _tsv_captions(source: CaptionInput) -> Iterator[Caption]:
    path = Path(source.location)
    lines = _decoded_lines(path)
    header = next(lines, None)
    if header is None:
        raise TranslationError(f"{path}: empty file (a TSV file needs a header line)")
    names = header[1].split("\t")
    if source.column not in names:
        raise TranslationError(
            f"{path}, line 1: no column {source.column!r} in the header (columns: "
            f"{', '.join(names)}); name one with --column"
        )
    index = names.index(source.column)
    for number, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(names):
            raise TranslationError(
                f"{path}, line {number}: {len(fields)} field(s), the header has {len(names)}"
            )
        text = normalised(fields[index])
        yield Caption(text, text)


def _json_captions(source: CaptionInput) -> Iterator[Caption]:
    """A COCO captions file, or JSON Lines in a `.json` file."""
    path = Path(source.location)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise TranslationError(f"{path}, line {line}: not valid UTF-8 ({error.reason})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":  # one object a line: JSON Lines
            yield from _jsonl_captions(source)
            return
        where = f"{path}, line {error.lineno}"
        raise TranslationError(f"{where}: not valid JSON ({error.msg})") from None
    yield from _coco_captions(document, path)


def _coco_captions(document: object, path: Path) -> Iterator[Caption]:
    if not isinstance(document, dict) or not isinstance(document.get("annotations"), list):
        found = f"keys: {', '.join(document)}" if isinstance(document, dict) else "not an object"
        raise TranslationError(f"{path}: not a COCO captions file: no 'annotations' list ({found})")
    for number, annotation in enumerate(document["annotations"], start=1):
        where = f"{path}, annotation {number}"
        if not isinstance(annotation, dict) or "caption" not in annotation:
            raise TranslationError(f"{where}: no 'caption'")
        if "image_id" not in annotation:
            raise TranslationError(f"{where}: no 'image_id'")
        caption = annotation["caption"]
        if not isinstance(caption, str):
            raise TranslationError(f"{where}: the caption is {type(caption).__name__}, not text")
        yield Caption(normalised(caption), f"image {annotation['image_id']}")


def _dataset_captions(source: CaptionInput) -> Iterator[Caption]:
    import datasets

    if source.kind == "hub-dataset":
        rows = datasets.load_dataset(source.location, split=source.split, streaming=True)
    else:
        rows = datasets.load_from_disk(source.location)  # memory-mapped, not read whole
        if isinstance(rows, datasets.DatasetDict):
            if source.split not in rows:
                raise TranslationError(
                    f"{source.location}: no split {source.split!r} (has {', '.join(rows)})"
                )
            rows = rows[source.split]
    for number, record in enumerate(rows, start=1):
        yield _record_caption(record, source.column, f"{source.location}, row {number}")


def _record_caption(record: object, column: str, where: str) -> Caption:
    if not isinstance(record, dict):
        raise TranslationError(f"{where}: expected an object, found {type(record).__name__}")
    if column not in record:
        raise TranslationError(
            f"{where}: no field {column!r} (fields: {', '.join(record)}); name one with --column"
        )
    text = record[column]
    if not isinstance(text, str):
        raise TranslationError(f"{where}: {column!r} is {type(text).__name__}, not text")
    text = normalised(text)
    return Caption(text, text)
