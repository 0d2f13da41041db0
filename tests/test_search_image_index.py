"""The index files: writing generations, what clean-up removes, reading them back."""

import json
from pathlib import Path

import numpy as np
import pytest

from search import image_index
from search.image_index import load_index, save_index

META = {"model": "m", "revision": None, "dim": 3, "root": "/photos", "unreadable": []}


def entries(*names: str) -> list[dict]:
    return [{"path": name, "size": 1, "mtime_ns": 2} for name in names]


def rows(count: int) -> np.ndarray:
    return np.arange(count * 3, dtype=np.float32).reshape(count, 3)


def test_generations_replace_each_other_and_round_trip(tmp_path: Path) -> None:
    meta = save_index(tmp_path, META, entries("a.png"), rows(1), None)
    assert (meta["generation"], meta["embeddings"], meta["version"]) == (1, "embeddings.1.npy", 2)
    meta = save_index(tmp_path, META, entries("a.png", "b.png"), rows(2), meta)
    index = load_index(tmp_path)
    assert index.files == entries("a.png", "b.png")
    np.testing.assert_array_equal(index.embeddings, rows(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "embeddings.2.npy",
        "files.2.jsonl",
        "meta.json",
    ]


def test_files_left_by_a_crash_after_the_switch_are_removed_next_time(
    tmp_path: Path, monkeypatch
) -> None:
    first = save_index(tmp_path, META, entries("a.png"), rows(1), None)
    real_unlink = Path.unlink

    def crash(self, missing_ok=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(KeyboardInterrupt):
        save_index(tmp_path, META, entries("b.png"), rows(1), first)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    second = json.loads((tmp_path / "meta.json").read_text())
    assert second["superseded"] == ["embeddings.1.npy", "files.1.jsonl"]
    save_index(tmp_path, META, entries("c.png"), rows(1), load_index(tmp_path).meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "embeddings.3.npy",
        "files.3.jsonl",
        "meta.json",
    ]


def test_an_empty_or_missing_folder_holds_no_index(tmp_path: Path) -> None:
    assert load_index(tmp_path / "nowhere") is None
    assert load_index(tmp_path) is None


def test_lines_end_only_at_newlines(tmp_path: Path) -> None:
    names = ["a\u2028b.png", "c\u2029d.png", "e\x85f.png", "g\rh.png"]
    meta = save_index(tmp_path, META, entries(*names), rows(4), None)
    text = (tmp_path / meta["files"]).read_text(encoding="utf-8")
    assert len(text.splitlines()) == 4
    assert [entry["path"] for entry in load_index(tmp_path).files] == names


def test_a_damaged_index_names_itself(tmp_path: Path) -> None:
    save_index(tmp_path, META, entries("a.png"), rows(1), None)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(image_index.IndexDamagedError, match="is damaged: .*meta.json: not JSON"):
        load_index(tmp_path)


def test_a_reader_racing_a_writer_reads_the_newer_generation(tmp_path: Path, monkeypatch) -> None:
    first = save_index(tmp_path, META, entries("a.png"), rows(1), None)
    read = image_index.read_embeddings
    calls = []

    def racing(path, count, dim):
        if not calls:  # a writer switches meta.json and deletes these files right now
            calls.append(path.name)
            save_index(tmp_path, META, entries("a.png", "b.png"), rows(2), first)
        return read(path, count, dim)

    monkeypatch.setattr(image_index, "read_embeddings", racing)
    index = load_index(tmp_path)
    assert calls == ["embeddings.1.npy"]
    assert [entry["path"] for entry in index.files] == ["a.png", "b.png"]
