"""Creating and updating an index: scan the folder, plan, embed what changed, merge, write.

The whole update runs under the index folder's lock, from reading the old index to writing the
new one, so two runs on one index take turns and each sees the other's images.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from inference.embedding_model import (
    EmbeddingModel,
    backend_name,
    embedding_width,
    fingerprint,
)
from inference.loading import ModelSpec, load_model, spec_for_index
from search.ann import ann_file_name, update_ann
from search.calibration import caption_queries_or_rows
from search.embedding import EmbeddedImages
from search.engines import Engine, LocalEngine
from search.errors import WrongFolderError, WrongModelError
from search.fingerprint import check_model_for_index
from search.image_index import (
    Index,
    check_index_folder,
    discard_unsaved,
    load_index,
    replace_meta,
    save_index,
    sweep_leftovers,
)
from search.locking import index_lock
from search.photo_metadata import photo_metadata
from search.scanning import scan_folder

# Image rows depend on these parts of the fingerprint; the tokenizer only affects text queries.
IMAGE_PARTS = ("weights", "image_processor")


# What meta.json records of the model; kept as it is where no image is embedded again.
_MODEL_KEYS = ("model", "revision", "fingerprint", "dim")


@dataclass
class UpdatePlan:
    """What an index update does; `keep` maps each path kept as it is to its old row."""

    keep: dict[str, int] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    still_unreadable: list[dict] = field(default_factory=list)

    @property
    def to_embed(self) -> list[str]:
        return sorted(self.added + self.changed)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass
class UpdateSummary:
    images: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    unreadable: int = 0
    retry: int = 0  # failed to read this time; tried again on the next run
    described: int = 0  # kept rows whose dates and cameras were recorded, without re-embedding
    up_to_date: bool = False


def plan_update(
    indexed: Sequence[dict],
    found: dict[str, tuple[int, int]],
    unreadable: Sequence[dict] = (),
    uncertain: Sequence[str] = (),
) -> UpdatePlan:
    """Compares the index's entries with the files on disk (`path -> (size, mtime_ns)`).

    Size and modification time are what a file system gives for free; hashing every image on
    each run would cost about as much as embedding it again. Files that were not images last
    time (`unreadable`) are tried again only once they change. Paths under `uncertain` (folders
    or files the scan could not read this time) keep their rows instead of being dropped.
    """
    plan = UpdatePlan()
    rows = {entry["path"]: row for row, entry in enumerate(indexed)}
    failed = {entry["path"]: entry for entry in unreadable}
    for path in sorted(found):
        known = indexed[rows[path]] if path in rows else failed.get(path)
        if known is None:
            plan.added.append(path)
        elif (known["size"], known["mtime_ns"]) != found[path]:
            plan.changed.append(path)
        elif path in rows:
            plan.keep[path] = rows[path]
        else:
            plan.still_unreadable.append(known)
    for path in sorted(set(rows) - set(found)):
        if _under(path, uncertain):
            plan.keep[path] = rows[path]
        else:
            plan.removed.append(path)
    plan.still_unreadable += [
        entry for path, entry in failed.items() if path not in found and _under(path, uncertain)
    ]
    return plan


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(not p or path == p or path.startswith(p + "/") for p in prefixes)


def update_index(
    folder: Path,
    root: Path,
    spec: ModelSpec,
    engine: Engine | None = None,
    *,
    reembed: bool = False,
    wait: float = 60.0,
    warn: Callable[[str], object] = print,
    progress: Callable[[int], object] | None = None,
    ann_threshold: int | None = None,
    model: EmbeddingModel | None = None,
) -> UpdateSummary:
    """Brings the index in `folder` up to date with the images under `root`.

    `spec` names the model: its `source` None means the index's own (or the default model for a
    new index); another model than the index's is refused unless `reembed`, which embeds every
    image again with it. `engine` embeds the images (default: in this process); `model` is the
    already loaded model of `spec`, where the caller has one. With `ann_threshold`, an
    approximate-search structure is built over the new rows once they reach that many, or
    wherever the old index had one (search/ann.py).

    Entries written before dates and cameras were recorded gain them here, without re-embedding.
    """
    _check_root(root)
    check_index_folder(folder)  # before the lock file is created in someone's own folder
    engine = engine or LocalEngine()
    with index_lock(folder, wait, warn):
        old = load_index(folder)
        if folder.is_dir():
            for name in sweep_leftovers(folder, old.meta if old else None):
                warn(f"removed {name} from {folder}, left by an update that did not finish")
        spec = spec_for_index(spec, old.meta if old else None, reembed)
        if old and old.meta["root"] != str(root):
            raise WrongFolderError(f"index {folder} holds images of {old.meta['root']}, not {root}")
        scan = scan_folder(root)
        for note in scan.notes:
            warn(note)
        plan = _plan(old, scan.found, scan.uncertain, reembed)
        for entry in plan.still_unreadable:
            warn(f"skipped: {entry['reason']} (unchanged since the last run)")
        # A model named anew (a moved folder, a student) is checked even when nothing changed,
        # so that an option is never silently ignored, and recorded for the next runs.
        renamed = old is not None and (spec.source, spec.revision) != (
            old.meta["model"],
            old.meta["revision"],
        )
        if old and not plan.has_changes and not reembed and renamed:
            model = model if model is not None else load_model(spec)
            recorded = fingerprint(model)
            _check_same_model(folder, old, model, recorded, warn)
            old.meta.update(model=spec.source, revision=spec.revision, fingerprint=recorded)
            replace_meta(folder, old.meta)
        if old and not plan.has_changes and not reembed:
            undescribed = [path for path, row in plan.keep.items() if "taken" not in old.files[row]]
            if not undescribed:
                engine.finish(folder)  # parts an interrupted run left are of no use now
                return UpdateSummary(len(old.files), unchanged=len(plan.keep), up_to_date=True)
            # Only dates and cameras to record: no model is loaded, no image decoded.
            files = [_described(entry, root) for entry in old.files]
            rows, unreadable = old.embeddings, plan.still_unreadable
            meta = {key: old.meta[key] for key in _MODEL_KEYS if key in old.meta}
            summary = UpdateSummary(len(files), unchanged=len(files))
            summary.described = len(undescribed)
        else:
            # Only images are embedded here: on the engine's image path (search/engines.py).
            model = model if model is not None else engine.load_model(spec)
            recorded = fingerprint(model)
            width = embedding_width(model)
            if old and not reembed:
                _check_same_model(folder, old, model, recorded, warn)
            paths = plan.to_embed
            warn(f"embedding with {backend_name(model)}")
            embedded = engine.embed(
                model, spec, [root / path for path in paths], folder, progress, warn
            )
            files, rows, summary = _merge(old, plan, paths, embedded, scan.found, root)
            unreadable = plan.still_unreadable + [
                dict(_entry(paths[i], scan.found), reason=reason)
                for i, reason in embedded.failures.items()
            ]
            meta = dict(model=spec.source, revision=spec.revision, fingerprint=recorded)
            meta["dim"] = width
        meta.update(root=str(root), unreadable=sorted(unreadable, key=_path))
        generation = (old.meta["generation"] if old else 0) + 1
        try:
            if ann_threshold is not None:
                had_ann = {"ann": old.meta["ann"]} if old and "ann" in old.meta else {}
                queries = _calibration(model, spec, warn)
                meta = update_ann(folder, meta | had_ann, rows, ann_threshold, generation, queries)
            save_index(folder, meta, files, rows, old.meta if old else None)
        except BaseException:  # a full disk, say: leave no file that meta.json does not name
            discard_unsaved(folder, _generation_names(generation))
            raise
    engine.finish(folder)
    summary.unreadable = len(unreadable)
    return summary


def _check_root(root: Path) -> None:
    try:
        str(root).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"the image folder's path {str(root)!r} is not valid UTF-8: rename it, or index "
            "a folder above it (names below it may be anything)"
        ) from None


def _plan(
    old: Index | None, found: dict[str, tuple[int, int]], uncertain: list[str], reembed: bool
) -> UpdatePlan:
    if old is None:
        return plan_update([], found)
    if not reembed:
        return plan_update(old.files, found, old.meta["unreadable"], uncertain)
    # Every image again, unreadable ones too; no old row survives, even of unreadable folders.
    plan = plan_update(old.files, found)
    plan.changed = sorted(plan.changed + list(plan.keep))
    plan.keep = {}
    return plan


def _check_same_model(
    folder: Path, old: Index, model, recorded: dict, warn: Callable[[str], object]
) -> None:
    dim = embedding_width(model)
    if old.meta["dim"] != dim:
        raise WrongModelError(
            f"index {folder} holds {old.meta['dim']}-dim embeddings, the model {dim}"
        )
    if old.meta.get("fingerprint") is None:
        warn(f"index {folder} records no model fingerprint (format version 1); adopting this one")
    # By content, not by name: any model with the same image side may add rows.
    check_model_for_index(str(folder), old.meta, model, model.processor, recorded)


def _calibration(model, spec: ModelSpec, warn: Callable[[str], object]):
    """What calibrates a structure: text embeddings of the built-in captions, from the loaded
    model; where no model was loaded (only dates and cameras were recorded), the index's rows."""
    if model is None:
        return None
    return partial(caption_queries_or_rows, model, warn)


def _generation_names(generation: int) -> list[str]:
    return [f"embeddings.{generation}.npy", f"files.{generation}.jsonl", ann_file_name(generation)]


def _merge(
    old: Index | None,
    plan: UpdatePlan,
    paths: list[str],
    embedded: EmbeddedImages,
    found: dict[str, tuple[int, int]],
    root: Path,
) -> tuple[list[dict], np.ndarray, UpdateSummary]:
    """Kept rows plus newly embedded ones, sorted by path so the index is deterministic.

    New entries record the size and time seen before reading, so a file rewritten while it was
    being embedded looks changed on the next run. A changed file that could not be read this
    time keeps its old row and entry, so the next run sees it as changed and tries again. Every
    entry leaves with its date and camera (search/photo_metadata.py).
    """
    keep = dict(plan.keep)
    if old:
        old_rows = {entry["path"]: row for row, entry in enumerate(old.files)}
        keep.update((paths[i], old_rows[paths[i]]) for i in embedded.retry if paths[i] in old_rows)
    rows = {path: old.embeddings[row] for path, row in keep.items()} if old else {}
    entries = {path: old.files[row] for path, row in keep.items()} if old else {}
    added = set(plan.added)
    summary = UpdateSummary(0, removed=len(plan.removed), unchanged=len(plan.keep))
    summary.retry = len(embedded.retry)
    for position, embedding in zip(embedded.kept, embedded.embeddings):
        path = paths[position]
        rows[path], entries[path] = embedding, _entry(path, found)
        entries[path].update(photo_metadata(root / path, entries[path]["mtime_ns"]))
        if path in added:
            summary.added += 1
        else:
            summary.updated += 1
    order = sorted(entries)
    dim = embedded.embeddings.shape[1]
    matrix = np.stack([rows[path] for path in order]) if order else np.zeros((0, dim))
    summary.images = len(order)
    described = [_described(entries[path], root) for path in order]
    summary.described = sum("taken" not in entries[path] for path in order)
    return described, matrix.astype(np.float32), summary


def _entry(path: str, found: dict[str, tuple[int, int]]) -> dict:
    size, mtime_ns = found[path]
    return {"path": path, "size": size, "mtime_ns": mtime_ns}


def _described(entry: dict, root: Path) -> dict:
    """The entry with its date and camera, read from the file where it has none yet."""
    if "taken" in entry:
        return entry
    return entry | photo_metadata(root / entry["path"], entry["mtime_ns"])


def _path(entry: dict) -> str:
    return entry["path"]
