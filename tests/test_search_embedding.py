"""The local embedding engine: the model's own embeddings, failures sorted by kind."""

from pathlib import Path

import numpy as np
import pytest
from builders import noise_image, sequential_rows, tiny_model, tiny_processor

from search.embedding import embed_images


@pytest.fixture(scope="module")
def model():
    model = tiny_model()
    model.processor = tiny_processor()
    return model


def test_rows_equal_encode_image_and_failures_are_sorted_by_kind(tmp_path: Path, model) -> None:
    good = [noise_image(tmp_path / f"{i}.png", i) for i in range(3)]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    missing = tmp_path / "gone.png"
    paths = [good[0], corrupt, good[1], missing, good[2]]
    progress, warnings = [], []
    result = embed_images(model, paths, 2, progress=progress.append, warn=warnings.append)
    assert result.kept == [0, 2, 4]
    np.testing.assert_allclose(
        result.embeddings, model.encode_image(good, return_numpy=True), atol=1e-5
    )
    assert list(result.failures) == [1] and "corrupt.jpg" in result.failures[1]
    assert list(result.retry) == [3] and "gone.png" in result.retry[3]
    assert sum(progress) == len(paths)
    assert len(warnings) == 2


def test_the_pixel_limit_is_the_processors(tmp_path: Path, model, monkeypatch) -> None:
    image = noise_image(tmp_path / "a.png", 0, size=(48, 40))
    monkeypatch.setattr(model.processor.image_processor, "max_image_pixels", 1000)
    result = embed_images(model, [image], 4)
    assert result.kept == [] and "1,000" in result.failures[0]
    assert result.embeddings.shape == (0, 16)


# The pipelined engine: same rows as one stage after the other, bounded memory.


def mixed_folder(folder: Path) -> list[Path]:
    """Photos, some large enough for a reduced decode, among a corrupt file and a missing one."""
    from builders import photo_like

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(11):
        path = folder / f"{seed:02d}.jpg"
        photo_like(200 + 20 * seed, 150 + 10 * seed, seed).save(path, quality=90)
        paths.append(path)
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    paths[3:3] = [corrupt]
    paths[8:8] = [folder / "gone.png"]
    return paths


@pytest.mark.parametrize("reduced", [False, True])
@pytest.mark.parametrize(("batch_size", "threads", "queue"), [(2, 3, None), (4, 2, 4), (3, 1, 9)])
def test_pipelined_rows_are_the_sequential_rows_bit_for_bit(
    tmp_path, model, reduced, batch_size, threads, queue
) -> None:
    paths = mixed_folder(tmp_path / "photos")
    rows, kept, failures, retry, expected_warnings = sequential_rows(
        model, paths, batch_size, reduced
    )
    progress, warnings = [], []
    result = embed_images(
        model,
        paths,
        batch_size,
        progress=progress.append,
        warn=warnings.append,
        reduced_decode=reduced,
        decode_threads=threads,
        queue_size=queue,
    )
    assert result.kept == kept and len(kept) == 11
    assert np.array_equal(result.embeddings, rows)
    assert result.failures == failures and list(failures) == [3]
    assert result.retry == retry and list(retry) == [8]
    assert warnings == expected_warnings
    assert progress == [min(batch_size, len(paths) - s) for s in range(0, len(paths), batch_size)]


def test_reduced_decode_is_off_by_default(tmp_path, model) -> None:
    paths = mixed_folder(tmp_path / "photos")
    exact = embed_images(model, paths, 4)
    assert np.array_equal(exact.embeddings, sequential_rows(model, paths, 4)[0])
    reduced = embed_images(model, paths, 4, reduced_decode=True)
    assert not np.array_equal(reduced.embeddings, exact.embeddings)  # JPEGs of 200x150 and up
    assert (reduced.embeddings * exact.embeddings).sum(-1).min() > 0.99


class SlowModel:
    """Stands in for a model that embeds slower than the files decode: each call sleeps, and the
    stub counts the images it has finished."""

    def __init__(self, processor, seconds: float, counts: dict):
        import torch

        self.processor = processor
        self.config = type("Config", (), {"projection_dim": 4})()
        self.device = torch.device("cpu")
        self.seconds, self.counts = seconds, counts

    def embed_pixel_values(self, pixels):
        import time

        import torch

        time.sleep(self.seconds)
        with self.counts["lock"]:
            self.counts["embedded"] += len(pixels)
        return torch.ones(len(pixels), 4)


def test_memory_stays_bounded_when_decoding_outruns_the_model(tmp_path, monkeypatch) -> None:
    import threading

    from search import embedding

    paths = [noise_image(tmp_path / f"{i}.png", i, size=(16, 16)) for i in range(48)]
    counts = {"lock": threading.Lock(), "decoded": 0, "embedded": 0, "most_waiting": 0}
    prepare = embedding.prepare_image

    def counting_prepare(*args):
        prepared = prepare(*args)
        with counts["lock"]:
            counts["decoded"] += 1
            waiting = counts["decoded"] - counts["embedded"]
            counts["most_waiting"] = max(counts["most_waiting"], waiting)
        return prepared

    monkeypatch.setattr(embedding, "prepare_image", counting_prepare)
    timeline = []
    model = SlowModel(tiny_processor(), 0.05, counts)
    result = embed_images(model, paths, 4, decode_threads=4, queue_size=8, timeline=timeline)
    assert result.kept == list(range(48)) and counts["embedded"] == 48
    # Decoding ran ahead as far as it may, and no further.
    assert counts["most_waiting"] == 8
    # The stages overlapped: files were decoded while the model was busy.
    calls = [(start, end) for stage, start, end in timeline if stage == "embed"]
    decodes = [end for stage, _, end in timeline if stage == "decode"]
    assert len(calls) == 12
    assert sum(any(start < end < stop for start, stop in calls) for end in decodes) >= 24


def test_a_batch_sized_queue_takes_turns_instead_of_overlapping(tmp_path, monkeypatch) -> None:
    import threading

    paths = [noise_image(tmp_path / f"{i}.png", i, size=(16, 16)) for i in range(16)]
    counts = {"lock": threading.Lock(), "embedded": 0}
    timeline = []
    model = SlowModel(tiny_processor(), 0.03, counts)
    embed_images(model, paths, 4, decode_threads=4, queue_size=4, timeline=timeline)
    calls = [(start, end) for stage, start, end in timeline if stage == "embed"]
    decodes = [(start, end) for stage, start, end in timeline if stage == "decode"]
    assert not any(a < stop and start < b for a, b in decodes for start, stop in calls)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue_size": 3}, "queue_size \\(3\\) must hold a batch \\(4\\)"),
        ({"decode_threads": 0}, "decode_threads must be at least 1"),
    ],
)
def test_engine_options_are_checked(tmp_path, model, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        embed_images(model, [noise_image(tmp_path / "a.png", 0)], 4, **options)


def test_an_error_in_the_model_stops_the_decoders(tmp_path, model, monkeypatch) -> None:
    from search import embedding

    paths = [noise_image(tmp_path / f"{i}.png", i) for i in range(40)]
    decoded = []
    prepare = embedding.prepare_image
    monkeypatch.setattr(embedding, "prepare_image", lambda *a: decoded.append(1) or prepare(*a))

    def failing(pixels):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(model, "embed_pixel_values", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        embed_images(model, paths, 4, decode_threads=2)
    assert len(decoded) <= 8 + 2  # the queue's worth, plus what was already running


# Reduced decoding against the exact path, on the full-size model with random weights.


@pytest.fixture(scope="module")
def full_size_model():
    import torch

    from turkish_clip import TurkishCLIPConfig, TurkishCLIPImageProcessor, TurkishCLIPModel

    torch.manual_seed(0)
    model = TurkishCLIPModel(TurkishCLIPConfig()).eval()
    model.processor = type("Processor", (), {"image_processor": TurkishCLIPImageProcessor()})()
    return model


def reduced_against_exact_cosines(model, paths: list[Path]) -> np.ndarray:
    exact = embed_images(model, paths, 8)
    reduced = embed_images(model, paths, 8, reduced_decode=True)
    assert exact.kept == reduced.kept == list(range(len(paths)))
    return (exact.embeddings * reduced.embeddings).sum(-1)


def test_reduced_decode_embeds_camera_photos_as_the_full_decode(tmp_path, full_size_model) -> None:
    from builders import photo_like

    sizes = [(4032, 3024), (3024, 4032), (1920, 1080), (1600, 1067)]
    paths = []
    for seed, size in enumerate(sizes):
        paths.append(tmp_path / f"camera{seed}.jpg")
        photo_like(*size, seed=seed).save(paths[-1], quality=90)
    cosines = reduced_against_exact_cosines(full_size_model, paths)
    assert cosines.min() >= 0.995
    assert cosines.min() < 1.0 - 1e-6  # reduced decoding really ran


def test_reduced_decode_embeds_the_demo_photos_as_the_full_decode(shared_dir, full_size_model):
    paths = sorted((shared_dir / "images").glob("*.jpeg"))
    assert len(paths) == 2
    assert reduced_against_exact_cosines(full_size_model, paths).min() >= 0.995
