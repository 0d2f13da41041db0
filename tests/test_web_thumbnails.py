"""Thumbnails under concurrent requests: one decode per file, a bounded number of decodes at once,
and failures that reach every waiting request without being cached."""

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from search.image_index import save_index
from search.photo_index import PhotoIndex
from tests.builders import noise_image
from web import thumbnails
from web.thumbnails import MAX_DECODES, ThumbnailFiles, ThumbnailRefused, thumbnail_id


@pytest.fixture
def photo_files(tmp_path: Path) -> ThumbnailFiles:
    """An index of six photos (its rows random: thumbnails never read them)."""
    names = [f"photo{i}.png" for i in range(6)]
    entries = []
    for seed, name in enumerate(names):
        stat = noise_image(tmp_path / name, seed).stat()
        entries.append({"path": name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    rows = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    meta = {"model": "any", "revision": None, "dim": 4, "root": str(tmp_path)}
    save_index(tmp_path / "photos.index", meta, entries, rows, None)
    return ThumbnailFiles(PhotoIndex.open(tmp_path / "photos.index"), max_pixels=None)


class CountingRender:
    """Stands in for the decoder: slow enough for requests to overlap, and counts them."""

    def __init__(self, fail: bool = False):
        self.calls: list[Path] = []
        self.running = 0
        self.most_at_once = 0
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, path: Path, max_pixels: int | None) -> bytes:
        with self._lock:
            self.calls.append(path)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.2)
        with self._lock:
            self.running -= 1
        if self.fail:
            raise ThumbnailRefused(404)
        return path.name.encode()


def _concurrently(count: int, request) -> tuple[list, list]:
    answers, errors = [], []

    def one(number: int) -> None:
        try:
            answers.append(request(number))
        except ThumbnailRefused as refused:
            errors.append(refused.status)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors


def test_concurrent_requests_for_one_photo_decode_it_once(photo_files, monkeypatch) -> None:
    render = CountingRender()
    monkeypatch.setattr(thumbnails, "_render", render)
    token = thumbnail_id("photo0.png")
    answers, errors = _concurrently(24, lambda _: photo_files.jpeg(token))
    assert errors == [] and answers == [b"photo0.png"] * 24
    assert len(render.calls) == 1


def test_decodes_of_different_photos_are_bounded(photo_files, monkeypatch) -> None:
    render = CountingRender()
    monkeypatch.setattr(thumbnails, "_render", render)
    tokens = [thumbnail_id(f"photo{i}.png") for i in range(6)]
    answers, errors = _concurrently(6, lambda n: photo_files.jpeg(tokens[n]))
    assert errors == [] and sorted(answers) == sorted(f"photo{i}.png".encode() for i in range(6))
    assert len(render.calls) == 6 and render.most_at_once == MAX_DECODES


def test_a_failed_render_reaches_every_waiter_and_is_not_cached(photo_files, monkeypatch) -> None:
    failing = CountingRender(fail=True)
    monkeypatch.setattr(thumbnails, "_render", failing)
    token = thumbnail_id("photo1.png")
    answers, errors = _concurrently(5, lambda _: photo_files.jpeg(token))
    assert answers == [] and errors == [404] * 5 and len(failing.calls) == 1
    working = CountingRender()
    monkeypatch.setattr(thumbnails, "_render", working)
    assert photo_files.jpeg(token) == b"photo1.png"  # tried again, not a remembered failure
    assert len(working.calls) == 1


def test_a_large_jpeg_is_decoded_reduced(tmp_path, monkeypatch) -> None:
    """A 4000x3000 JPEG is decoded at 1/4 (1000x750, the short side still >= DECODED_SIZE),
    never in full."""
    from PIL import Image, JpegImagePlugin

    from web.thumbnails import DECODED_SIZE, THUMBNAIL_SIZE

    pixels = np.random.default_rng(0).integers(0, 256, (375, 500, 3), np.uint8)
    Image.fromarray(pixels).resize((4000, 3000)).save(tmp_path / "large.jpg", quality=90)
    stat = (tmp_path / "large.jpg").stat()
    entries = [{"path": "large.jpg", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}]
    rows = np.ones((1, 4), np.float32)
    meta = {"model": "any", "revision": None, "dim": 4, "root": str(tmp_path)}
    save_index(tmp_path / "photos.index", meta, entries, rows, None)
    files = ThumbnailFiles(PhotoIndex.open(tmp_path / "photos.index"), max_pixels=None)
    decoded = []
    original = JpegImagePlugin.JpegImageFile.load

    def load(self):
        decoded.append(self.size)
        return original(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    thumbnail = Image.open(io.BytesIO(files.jpeg(thumbnail_id("large.jpg"))))
    assert thumbnail.size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE * 3 // 4)
    assert decoded[0] == (1000, 750) and min(decoded[0]) >= DECODED_SIZE
