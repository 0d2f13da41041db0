"""The record that ties an ONNX export to the weights it was exported from: `onnx/export.json`.

    {"weights_sha256": "<SHA-256 of model.safetensors>", "files": ["text_model.onnx", ...]}

The digest is of the whole file (the one older index records took of it, see
`search/fingerprint.py`): the ONNX files hold both towers. The ONNX backend compares it with the
folder's weights before it runs a file, so an `onnx/` folder exported from
other weights (copied from another folder, or left from before the weights were retrained) is
refused by name instead of producing other embeddings than the torch model.

An export without a record (made before records existed) is refused where the folder has
`model.safetensors`: nothing says the files belong to those weights, and the fix is to export
again. A folder without the weights file (the backend's Hub download fetches only the ONNX and
configuration files) is compared with the repository's `model.safetensors` as the Hub reports it,
where the Hub answers; with nothing to compare with, the export is used as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

ONNX_DIR = "onnx"
RECORD_FILE = "export.json"
WEIGHTS_FILE = "model.safetensors"


class StaleOnnxExport(ValueError):
    """The ONNX files were not exported from the folder's weights, or nothing says they were."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(folder: Path) -> str | None:
    """The digest of `folder/model.safetensors`, or None where the folder has no such file."""
    weights = folder / WEIGHTS_FILE
    return file_sha256(weights) if weights.is_file() else None


def write_record(folder: Path, digest: str | None, files: Sequence[str]) -> None:
    """Written last, with one rename: a record never names files that are not in place."""
    path = folder / ONNX_DIR / RECORD_FILE
    temporary = path.with_name(f".{RECORD_FILE}.tmp-{os.getpid()}")
    record = {"weights_sha256": digest, "files": sorted(files)}
    try:
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_record(folder: Path) -> None:
    """Before files are replaced: a kill halfway then leaves no record that vouches for them."""
    (folder / ONNX_DIR / RECORD_FILE).unlink(missing_ok=True)


def check_record(folder: Path, files: Sequence[str], again: str, digest: str | None = None) -> None:
    """Refuses `files` of `folder/onnx/` unless its record says they were exported from the
    folder's weights (`digest`: their SHA-256 where the caller knows it without the file).
    `again` ends each message: what to do about it."""
    onnx_dir = folder / ONNX_DIR
    if digest is None:
        digest = weights_sha256(folder)
    record = _read(onnx_dir / RECORD_FILE, again)
    if record is None:
        if digest is None:
            return  # only ONNX files: there are no other weights they could disagree with
        raise StaleOnnxExport(
            f"{onnx_dir} has no {RECORD_FILE}, so nothing says its files were exported from "
            f"{folder / WEIGHTS_FILE}: {again}"
        )
    for name in files:
        if name not in record["files"]:
            raise StaleOnnxExport(
                f"{onnx_dir / name} is not one of the files {onnx_dir / RECORD_FILE} records: "
                f"{again}"
            )
    recorded = record["weights_sha256"]
    if digest is not None and recorded != digest:
        raise StaleOnnxExport(
            f"{onnx_dir} was exported from other weights than {folder / WEIGHTS_FILE} "
            f"(SHA-256 {str(recorded)[:12]}... recorded, {digest[:12]}... now): {again}"
        )


def _read(path: Path, again: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StaleOnnxExport(f"{path} is not valid JSON ({error}): {again}") from None
    valid = isinstance(record, dict) and isinstance(record.get("files"), list)
    if not valid or not isinstance(record.get("weights_sha256"), (str, type(None))):
        raise StaleOnnxExport(f"{path} is not an export record: {again}")
    return record
