"""Thumbnails under concurrent requests: one decode per file, a bounded number of decodes at once,
and failures that reach every waiting request without being cached."""

import threading
import time
from pathlib import Path

import pytest

from tests.builders import noise_image
from web import thumbnails
from web.thumbnails import MAX_DECODES, ThumbnailFiles, ThumbnailRefused, thumbnail_id


@pytest.fixture
def photo_files(tmp_path: Path) -> ThumbnailFiles:
    names = [f"photo{i}.png" for i in range(6)]
    for seed, name in enumerate(names):
        noise_image(tmp_path / name, seed)
    return ThumbnailFiles(tmp_path, names, max_pixels=None)


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
