"""The model and index behind the page and the HTTP API: the photo-search core
(search/library.py), loaded once with the command line's rules.

The page and the API reach the model and the index only through this `AppModel`, so a change
in how models load or indexes are searched is made in the core alone.
"""

import time
from pathlib import Path

from inference.loading import ModelSpec
from search.errors import EmptyIndexError
from search.library import PhotoLibrary


class AppInputError(ValueError):
    """Input from the page that cannot be used; the message is shown on the page as it is."""


class AppModel(PhotoLibrary):
    """The core, with what the page shows of it: the model's name and the index's folder."""

    @property
    def source(self) -> str:
        return self.spec.name

    @property
    def revision(self) -> str | None:
        return self.spec.revision

    @property
    def index_folder(self) -> Path | None:
        return None if self.index is None else self.index.folder


def load_app_model(
    model: str | None, revision: str | None, index_folder: Path | None = None
) -> AppModel:
    """The command line's rules: an index's own model by default, another one refused."""
    loaded = AppModel.load(ModelSpec(model, revision), index_folder)
    if loaded.index is not None and not loaded.index.files:
        raise EmptyIndexError(f"index {str(index_folder)!r} is empty")
    return loaded


def index_summary(app: AppModel, now: float | None = None) -> dict:
    """What the About tab shows of the index: size, folder and age."""
    meta = app.index.meta
    built = (app.index_folder / "meta.json").stat().st_mtime
    age = (time.time() if now is None else now) - built
    return {
        "images": len(app.index.files),
        "root": meta["root"],
        "folder": str(app.index_folder),
        "unreadable": len(meta.get("unreadable", [])),
        "updated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(built)),
        "age": describe_age(age),
    }


def describe_age(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
