"""The inputs of zero-shot evaluation: class labels of image folders, and caption files."""

import json
from collections import Counter
from pathlib import Path


def read_class_labels(root: Path, folders: list[str]) -> dict[str, str]:
    """Turkish label per class folder: from classes.json or classes.txt where present, else the
    folder's own name."""
    json_path, txt_path = root / "classes.json", root / "classes.txt"
    if json_path.exists() and txt_path.exists():
        raise ValueError(f"{root} has both classes.json and classes.txt; keep one")
    if json_path.exists():
        mapping = _read_json_mapping(json_path)
    elif txt_path.exists():
        mapping = _read_tsv_mapping(txt_path)
    else:
        return {folder: folder for folder in folders}
    missing = [folder for folder in folders if folder not in mapping]
    if missing:
        source = json_path if json_path.exists() else txt_path
        raise ValueError(f"{source} gives no label for folder(s): {', '.join(missing)}")
    labels = {folder: mapping[folder] for folder in folders}
    repeated = [label for label, n in Counter(labels.values()).items() if n > 1]
    if repeated:
        raise ValueError(f"several class folders share the label(s) {', '.join(repeated)}")
    return labels


def read_text(path: Path) -> str:
    """A UTF-8 text file without its byte order mark, which Windows editors write."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error}") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def read_text_lines(path: Path) -> list[str]:
    """Only newlines end a line: str.splitlines would also split at U+2028, U+0085 (a "…"
    mis-decoded) and other separators that may sit inside a caption or a label."""
    return [line.removesuffix("\r") for line in read_text(path).split("\n")]


def _read_json_mapping(path: Path) -> dict[str, str]:
    try:
        mapping = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(v, str) and v.strip() for v in mapping.values()
    ):
        raise ValueError(f"{path} must be a JSON object mapping folder names to Turkish labels")
    return mapping


def _read_tsv_mapping(path: Path) -> dict[str, str]:
    mapping = {}
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        folder, _, label = line.partition("\t")
        if not label.strip():
            raise ValueError(f"{path} line {number}: expected 'folder<TAB>label', got {line!r}")
        if folder.strip() in mapping:
            raise ValueError(f"{path} line {number}: folder {folder.strip()!r} is named twice")
        mapping[folder.strip()] = label.strip()
    return mapping


def read_captions(path: Path) -> list[tuple[Path, str]]:
    """(image path, caption) pairs; relative image paths are taken from the file's folder."""
    if not path.is_file():
        raise ValueError(f"caption file {str(path)!r} not found")
    pairs = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        image, _, caption = line.partition("\t")
        if not image.strip() or not caption.strip():
            raise ValueError(f"{path} line {number}: expected 'image<TAB>caption', got {line!r}")
        pairs.append((path.parent / image.strip(), caption.strip()))
    if not pairs:
        raise ValueError(f"{path} holds no captions")
    return pairs
