"""The index's pure parts: update planning and the folder scan."""

from pathlib import Path

from search import image_index


def test_plan_update_sorts_files_into_kept_added_changed_removed() -> None:
    indexed = [
        {"path": "a.jpg", "size": 1, "mtime_ns": 10},
        {"path": "b.jpg", "size": 2, "mtime_ns": 20},
        {"path": "c.jpg", "size": 3, "mtime_ns": 30},
        {"path": "d.jpg", "size": 4, "mtime_ns": 40},
    ]
    unreadable = [
        {"path": "bad.jpg", "size": 5, "mtime_ns": 50, "reason": "x"},
        {"path": "fixed.jpg", "size": 6, "mtime_ns": 60, "reason": "y"},
    ]
    found = {
        "a.jpg": (1, 10),  # unchanged
        "b.jpg": (9, 20),  # size changed
        "d.jpg": (4, 41),  # mtime changed
        "e.jpg": (7, 70),  # new
        "bad.jpg": (5, 50),  # still the same broken file
        "fixed.jpg": (6, 61),  # rewritten since it failed
    }
    plan = image_index.plan_update(indexed, found, unreadable)
    assert plan.keep == {"a.jpg": 0}
    assert plan.added == ["e.jpg"]
    assert plan.changed == ["b.jpg", "d.jpg", "fixed.jpg"]
    assert plan.removed == ["c.jpg"]
    assert plan.still_unreadable == [unreadable[0]]
    assert plan.to_embed == ["b.jpg", "d.jpg", "e.jpg", "fixed.jpg"]
    assert not image_index.plan_update(indexed[:1], {"a.jpg": (1, 10)}).has_changes


def test_scan_images_matches_extensions_case_insensitively(tmp_path: Path) -> None:
    for name in ["a.JPG", "b.tiff", "c.txt", "sub/d.webp", "e.jpeg.bak", "sub/deep/f.Png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert sorted(image_index.scan_images(tmp_path)) == [
        "a.JPG",
        "b.tiff",
        "sub/d.webp",
        "sub/deep/f.Png",
    ]
