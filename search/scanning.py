"""Finding the image files under a folder.

Symbolic links are followed, to files and to folders alike, because a photo library often
links in folders kept elsewhere. Each folder is entered once, by its (device, inode): a link
back to an ancestor (a loop) or a second link to a folder already seen is skipped with a note.
"""

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class Scan:
    """`found`: relative POSIX path -> (size, mtime in ns). `uncertain`: relative paths of files
    and folders whose state could not be read this time (an I/O error, a permission), whose
    indexed rows must therefore be kept, not dropped. `notes`: what was skipped and why."""

    found: dict[str, tuple[int, int]] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def scan_folder(root: Path) -> Scan:
    """Image files under `root`, recursively, any letter case of the extension.

    Names are kept as the file system gives them: names that are not valid UTF-8 arrive with
    Python's surrogate escapes, which `os.fsencode` turns back into the exact bytes.
    """
    scan = Scan()
    seen: set[tuple[int, int]] = set()
    # Linked folders wait until the real tree is scanned, so a folder reached both directly and
    # through a link keeps its real path.
    pending, linked = [""], []
    while pending or linked:
        relative = pending.pop() if pending else linked.pop()
        folder = os.path.join(root, relative) if relative else str(root)
        if not _first_visit(folder, seen, scan):
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            scan.uncertain.append(relative)
            scan.notes.append(f"could not read folder {folder!r}: {error.strerror or error}")
            continue
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            _visit(entry, path, scan, linked if entry.is_symlink() else pending)
    return scan


def _first_visit(folder: str, seen: set[tuple[int, int]], scan: Scan) -> bool:
    try:
        identity = _identity(os.stat(folder))
    except OSError:
        return True  # scandir reports the error
    if identity in seen:
        scan.notes.append(f"skipped {folder!r}: a link to a folder already scanned")
        return False
    seen.add(identity)
    return True


def _visit(entry: os.DirEntry, path: str, scan: Scan, folders: list[str]) -> None:
    try:
        info = entry.stat()  # follows links
    except FileNotFoundError:
        if entry.is_symlink():
            scan.notes.append(f"skipped broken link {entry.path!r}")
        return  # otherwise removed while scanning
    except OSError as error:
        scan.uncertain.append(path)
        scan.notes.append(f"could not read {entry.path!r}: {error.strerror or error}")
        return
    if stat.S_ISDIR(info.st_mode):
        folders.append(path)
    elif stat.S_ISREG(info.st_mode) and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
        scan.found[path] = (info.st_size, info.st_mtime_ns)


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def scan_images(root: Path) -> dict[str, tuple[int, int]]:
    """Image files under `root`: relative POSIX path -> (size, mtime in ns)."""
    return scan_folder(root).found
