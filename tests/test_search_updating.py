"""Update planning, on hand-made entries."""

from search import updating


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
    plan = updating.plan_update(indexed, found, unreadable)
    assert plan.keep == {"a.jpg": 0}
    assert plan.added == ["e.jpg"]
    assert plan.changed == ["b.jpg", "d.jpg", "fixed.jpg"]
    assert plan.removed == ["c.jpg"]
    assert plan.still_unreadable == [unreadable[0]]
    assert plan.to_embed == ["b.jpg", "d.jpg", "e.jpg", "fixed.jpg"]
    assert not updating.plan_update(indexed[:1], {"a.jpg": (1, 10)}).has_changes


def test_plan_update_keeps_rows_under_folders_the_scan_could_not_read() -> None:
    indexed = [
        {"path": "a/x.jpg", "size": 1, "mtime_ns": 1},
        {"path": "ab.jpg", "size": 1, "mtime_ns": 1},
    ]
    unreadable = [{"path": "a/bad.jpg", "size": 1, "mtime_ns": 1, "reason": "r"}]
    plan = updating.plan_update(indexed, {}, unreadable, uncertain=["a"])
    assert plan.keep == {"a/x.jpg": 0}  # "ab.jpg" is not under "a/"
    assert plan.removed == ["ab.jpg"]
    assert plan.still_unreadable == unreadable
