"""The folder scan: extensions, symbolic links and loops, names of any bytes."""

import os
from pathlib import Path

from search import scanning


def test_scan_images_matches_extensions_case_insensitively(tmp_path: Path) -> None:
    for name in ["a.JPG", "b.tiff", "c.txt", "sub/d.webp", "e.jpeg.bak", "sub/deep/f.Png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert sorted(scanning.scan_images(tmp_path)) == [
        "a.JPG",
        "b.tiff",
        "sub/d.webp",
        "sub/deep/f.Png",
    ]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_linked_folders_are_followed_once_and_loops_end(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    touch(root / "2020" / "a.jpg")
    touch(root / "2020" / "deep" / "b.png")
    touch(tmp_path / "elsewhere" / "c.jpg")
    os.symlink(tmp_path / "elsewhere", root / "linked")  # a folder kept outside: followed
    os.symlink("../..", root / "2020" / "deep" / "up")  # back to the root: a loop
    os.symlink("2020", root / "again")  # a second way to a folder already scanned
    os.symlink(tmp_path / "nowhere.jpg", root / "broken.jpg")
    scan = scanning.scan_folder(root)
    assert sorted(scan.found) == ["2020/a.jpg", "2020/deep/b.png", "linked/c.jpg"]
    notes = "\n".join(scan.notes)
    assert "2020/deep/up" in notes and "again" in notes and "broken.jpg" in notes
    assert scan.uncertain == []


def test_names_that_are_not_utf8_come_back_as_their_bytes(tmp_path: Path) -> None:
    raw = "kedi_ş".encode("cp857") + b".jpg"  # a Turkish name from a cp857 zip
    touch(Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), raw))))
    [name] = scanning.scan_images(tmp_path)
    assert os.fsencode(name) == raw


def test_an_unreadable_folder_is_uncertain_not_empty(tmp_path: Path, monkeypatch) -> None:
    touch(tmp_path / "locked" / "a.jpg")
    touch(tmp_path / "b.jpg")
    scandir = os.scandir

    def refusing(path):  # chmod 000 does not stop root, so the refusal is simulated
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(scanning.os, "scandir", refusing)
    scan = scanning.scan_folder(tmp_path)
    assert list(scan.found) == ["b.jpg"]
    assert scan.uncertain == ["locked"]
    assert "Permission denied" in scan.notes[0]
