"""The built-in Turkish captions that calibrate approximate search, and their embeddings."""

import numpy as np
from builders import tiny_model, tiny_processor

from search.calibration import calibration_captions, caption_queries, caption_queries_or_rows


def test_a_few_hundred_distinct_short_turkish_captions() -> None:
    captions = calibration_captions()
    assert 250 <= len(captions) <= 1000
    assert len(set(captions)) == len(captions)
    assert all(0 < len(caption.split()) <= 12 for caption in captions)
    assert sum(any(letter in caption for letter in "çğıöşüÇĞİÖŞÜ") for caption in captions) > 150


def test_queries_are_the_models_own_text_embeddings() -> None:
    model = tiny_model()
    model.processor = tiny_processor()
    queries = caption_queries(model)
    expected = model.encode_text(calibration_captions(), return_numpy=True)
    assert queries.dtype == np.float32 and queries.shape == (len(calibration_captions()), 16)
    np.testing.assert_allclose(queries, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)


def test_a_model_that_cannot_embed_text_falls_back_with_a_warning() -> None:
    class ImageOnly:
        def encode_text(self, *args, **kwargs):
            raise AttributeError("this model has no text encoder")

    warnings = []
    assert caption_queries_or_rows(ImageOnly(), warnings.append) is None
    assert len(warnings) == 1 and "own rows" in warnings[0] and "no text encoder" in warnings[0]
