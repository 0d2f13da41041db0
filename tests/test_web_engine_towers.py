"""The web page's classification on a SigLIP student: sigmoid scores, as the pipeline gives."""

import numpy as np
import pytest
from builders import save_tiny_siglip_model_folder
from PIL import Image
from transformers import pipeline

from turkish_clip import DEFAULT_TEMPLATE
from web.engine import classify, load_app_model

LABELS = ["kedi", "köpek", "araba"]


def test_the_page_scores_a_siglip_student_as_its_pipeline(tmp_path):
    folder = save_tiny_siglip_model_folder(tmp_path / "model")
    app = load_app_model(str(folder), None, None)
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (40, 50, 3), np.uint8))
    scores = classify(app, image, LABELS, (DEFAULT_TEMPLATE,))
    classifier = pipeline(
        "zero-shot-image-classification", model=str(folder), trust_remote_code=True
    )
    expected = {row["label"]: row["score"] for row in classifier(image, candidate_labels=LABELS)}
    assert scores == pytest.approx(expected, abs=1e-5)
    assert abs(sum(scores.values()) - 1) > 1e-3  # sigmoid: each label on its own
