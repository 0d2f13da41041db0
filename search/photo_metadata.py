"""What an index records of each photo besides its embedding: when it was taken and with which
camera, read from EXIF without decoding any pixels.

- taken: EXIF DateTimeOriginal (the camera's local time, as cameras record it), else
  DateTime, else the file's modification time in UTC; ISO 8601 without a zone,
  "YYYY-MM-DDTHH:MM:SS".
- camera: EXIF Make and Model joined by a space (the make left out where the model already
  starts with it), or None.
"""

import datetime as dt
from pathlib import Path

EXIF_IFD = 0x8769
MAKE, MODEL, DATE_TIME = 0x010F, 0x0110, 0x0132
DATE_TIME_ORIGINAL = 0x9003
_EXIF_DATE = "%Y:%m:%d %H:%M:%S"


def photo_metadata(path: Path, mtime_ns: int) -> dict:
    """{"taken", "camera"} of the file at `path`; a file without readable EXIF gets its time."""
    exif = _read_exif(path)
    taken = _exif_date(exif.get("original")) or _exif_date(exif.get("date"))
    if taken is None:
        taken = dt.datetime.fromtimestamp(mtime_ns / 1e9, dt.UTC).replace(tzinfo=None)
    return {"taken": taken.replace(microsecond=0).isoformat(), "camera": _camera(exif)}


def _read_exif(path: Path) -> dict:
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            exif = image.getexif()
            return {
                "make": exif.get(MAKE),
                "model": exif.get(MODEL),
                "date": exif.get(DATE_TIME),
                "original": exif.get_ifd(EXIF_IFD).get(DATE_TIME_ORIGINAL),
            }
    except Exception:  # noqa: BLE001 - no EXIF is the answer for anything Pillow cannot parse
        return {}


def _exif_date(value: object) -> dt.datetime | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value.strip("\x00 ").strip(), _EXIF_DATE)
    except ValueError:  # "0000:00:00 00:00:00" and other placeholders
        return None


def _camera(exif: dict) -> str | None:
    make, model = (_text(exif.get(key)) for key in ("make", "model"))
    if make and model and model.lower().startswith(make.lower()):
        return model
    joined = " ".join(part for part in (make, model) if part)
    return joined or None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    return " ".join(value.replace("\x00", " ").split())
