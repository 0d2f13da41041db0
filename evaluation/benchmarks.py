"""The field's multilingual retrieval benchmarks, read from folders laid out as their publishers
distribute them, and scored as CLIP_benchmark scores them.

- `xm3600` (Crossmodal-3600): `captions.jsonl`, one object per image with its `image/key` and,
  per language, `{"caption": [...]}`; images `images/<key>.jpg`. As in CLIP_benchmark, each image
  is paired with the first of its captions in the language.
- `xtd10`: `test_image_names.txt` (one image file name a line) and `test_1kcaptions_<lang>.txt`
  (the caption of the image on the same line), beside an `images/` folder.

Images that are not there are counted and skipped with their captions, as CLIP_benchmark does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.metrics import RECALL_KS, retrieval_recall

BENCHMARKS = ("xm3600", "xtd10")
XTD10_CAPTIONS = "test_1kcaptions_{}.txt"
XTD10_IMAGES = "test_image_names.txt"


class BenchmarkError(ValueError):
    """A benchmark folder that cannot be read; the message names the file and, where there is
    one, the line."""


@dataclass
class BenchmarkCaptions:
    """One caption per image, for the images that are there."""

    images: list[Path] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # image files named but not there


def read_benchmark(name: str, root: Path, language: str) -> BenchmarkCaptions:
    if not root.is_dir():
        raise BenchmarkError(f"benchmark folder {root} not found")
    readers = {"xm3600": read_xm3600, "xtd10": read_xtd10}
    return readers[name](root, language)


def read_xm3600(root: Path, language: str) -> BenchmarkCaptions:
    path = root / "captions.jsonl"
    found = BenchmarkCaptions()
    for number, line in _numbered_lines(path):
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BenchmarkError(f"{where}: not a JSON object ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("image/key"), str):
            raise BenchmarkError(f"{where}: no 'image/key'")
        entry = record.get(language)
        if not isinstance(entry, dict):
            languages = sorted(k for k, v in record.items() if isinstance(v, dict))
            raise BenchmarkError(
                f"{where}: no {language!r} captions (languages: {', '.join(languages)})"
            )
        captions = entry.get("caption")
        if not isinstance(captions, list) or not captions or not isinstance(captions[0], str):
            raise BenchmarkError(f"{where}: no {language!r} caption list")
        _add(found, root / "images" / f"{record['image/key']}.jpg", captions[0])
    if not found.images and not found.missing:
        raise BenchmarkError(f"{path} holds no images")
    return found


def read_xtd10(root: Path, language: str) -> BenchmarkCaptions:
    captions_path = root / XTD10_CAPTIONS.format(language)
    if not captions_path.is_file():
        prefix, suffix = XTD10_CAPTIONS.split("{}")
        languages = sorted(
            p.name.removeprefix(prefix).removesuffix(suffix) for p in root.glob(f"{prefix}*")
        )
        raise BenchmarkError(
            f"{captions_path} not found: no {language!r} captions in {root} "
            f"(languages: {', '.join(languages) or 'none'})"
        )
    names = [line.strip() for _, line in _numbered_lines(root / XTD10_IMAGES)]
    captions = [line.strip() for _, line in _numbered_lines(captions_path)]
    if len(names) != len(captions):
        raise BenchmarkError(
            f"{captions_path} has {len(captions)} captions for the {len(names)} images of "
            f"{root / XTD10_IMAGES}"
        )
    found = BenchmarkCaptions()
    for name, caption in zip(names, captions):
        _add(found, root / "images" / name, caption)
    return found


def _add(found: BenchmarkCaptions, image: Path, caption: str) -> None:
    if image.is_file():
        found.images.append(image)
        found.captions.append(caption)
    else:
        found.missing.append(image.name)


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a UTF-8 file with their numbers (from 1)."""
    if not path.is_file():
        raise BenchmarkError(f"{path} not found")
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise BenchmarkError(
                    f"{path}, line {number}: not valid UTF-8 ({error.reason})"
                ) from None
            line = line.removeprefix("\ufeff") if number == 1 else line
            if line.strip():
                yield number, line


def retrieval_metrics(text_embeds: np.ndarray, image_embeds: np.ndarray) -> dict[str, float]:
    """CLIP_benchmark's zero-shot retrieval metrics for caption i of image i: image retrieval is
    text -> image, text retrieval image -> text; recall@k as a fraction, a query counting as found
    when a positive is among its k best candidates."""
    recall = retrieval_recall(text_embeds @ image_embeds.T, np.arange(len(text_embeds)))
    metrics = {}
    for key, direction in (
        ("image_retrieval", "text_to_image"),
        ("text_retrieval", "image_to_text"),
    ):
        for k in RECALL_KS:
            metrics[f"{key}_recall@{k}"] = recall[direction][f"R@{k}"]
    return metrics


def benchmark_result(dataset: str, model: str, language: str, metrics: dict) -> dict:
    """The result in CLIP_benchmark's layout."""
    return {
        "dataset": dataset,
        "model": model,
        "language": language,
        "task": "zeroshot_retrieval",
        "metrics": metrics,
    }
