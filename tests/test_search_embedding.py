"""The local embedding engine: the model's own embeddings, failures sorted by kind."""

from pathlib import Path

import numpy as np
import pytest
from builders import noise_image, tiny_model, tiny_processor

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
