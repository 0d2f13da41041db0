"""Which photos a search may return: filters on what the index recorded of each photo.

- taken_after / taken_before: ISO dates (or dates and times); a photo taken on or after
  `taken_after` and before `taken_before` passes (a date alone means its midnight). The date
  is EXIF's capture date, else the file's time (search/photo_metadata.py).
- camera: a case-insensitive part of the camera's make and model.
- folder: a folder under the indexed root (a relative path; the photo is in it or below it).
- type: a file extension, with or without its dot, any letter case ("jpg", ".PNG").
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from search.errors import BadQueryError

FILTER_NAMES = ("taken_after", "taken_before", "camera", "folder", "type")


@dataclass(frozen=True)
class PhotoColumns:
    """What the filters look at, as one array per field over an index's rows: built once per
    generation, so that a filter costs a few vector operations, not a Python loop per photo."""

    taken: np.ndarray  # datetime64[s]; NaT where no date is recorded
    camera: np.ndarray  # case-folded make and model; "" where none
    path: np.ndarray
    suffix: np.ndarray  # case-folded extension with its dot

    @classmethod
    def of(cls, files: list[dict]) -> "PhotoColumns":
        paths = [entry["path"] for entry in files]
        return cls(
            taken=np.array([entry.get("taken") for entry in files], dtype="datetime64[s]"),
            camera=np.array([(entry.get("camera") or "").casefold() for entry in files], str),
            path=np.array(paths, dtype=str),
            suffix=np.array([PurePosixPath(path).suffix.casefold() for path in paths], str),
        )


@dataclass(frozen=True)
class PhotoFilter:
    taken_after: dt.datetime | None = None
    taken_before: dt.datetime | None = None
    camera: str | None = None
    folder: str | None = None
    type: str | None = None

    @property
    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in FILTER_NAMES)

    def mask(self, columns: PhotoColumns) -> np.ndarray:
        """Which rows pass every filter; a photo without a date fails a date filter."""
        passing = np.ones(len(columns.path), dtype=bool)
        if self.taken_after is not None:
            passing &= columns.taken >= np.datetime64(self.taken_after, "s")
        if self.taken_before is not None:
            passing &= columns.taken < np.datetime64(self.taken_before, "s")
        if self.camera is not None:
            passing &= np.strings.find(columns.camera, self.camera) >= 0
        if self.folder:  # "" is the indexed folder itself: every photo
            passing &= np.strings.startswith(columns.path, self.folder + "/")
        if self.type is not None:
            passing &= columns.suffix == self.type
        return passing


NO_FILTER = PhotoFilter()


def parse_filter(values: dict | None) -> PhotoFilter:
    """A PhotoFilter from strings (a JSON object's or a form's); BadQueryError names the field.

    Empty strings and nulls count as not given, as an empty form field does.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise BadQueryError(f"filters must be an object, got {type(values).__name__}")
    unknown = sorted(set(values) - set(FILTER_NAMES))
    if unknown:
        raise BadQueryError(
            f"unknown filter {unknown[0]!r}; the filters are {', '.join(FILTER_NAMES)}"
        )
    given = {}
    for name in FILTER_NAMES:
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            raise BadQueryError(f"filter {name!r} must be a string, got {value!r}")
        given[name] = value.strip()
    return PhotoFilter(
        taken_after=parse_when(given.get("taken_after"), "taken_after"),
        taken_before=parse_when(given.get("taken_before"), "taken_before"),
        camera=given["camera"].casefold() if "camera" in given else None,
        folder=parse_folder(given.get("folder")),
        type=parse_type(given.get("type")),
    )


def parse_when(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadQueryError(
            f"{name} must be an ISO date such as 2024-07-31 (or 2024-07-31T18:00), got {text!r}"
        ) from None
    return when.replace(tzinfo=None)


def parse_folder(text: str | None) -> str | None:
    if text is None:
        return None
    parts = [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]
    if text.startswith("/") or ".." in parts:
        raise BadQueryError(f"folder must be a folder inside the indexed one, got {text!r}")
    return "/".join(parts)


def parse_type(text: str | None) -> str | None:
    if text is None:
        return None
    extension = text.casefold().removeprefix(".")
    if not extension or "/" in extension or "." in extension:
        raise BadQueryError(f"type must be a file extension such as jpg, got {text!r}")
    return "." + extension
