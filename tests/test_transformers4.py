"""A converted folder gives the same outputs under transformers 4.57 as under 5.x."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("load_folder.py")
TRANSFORMERS4_PYTHON = os.environ.get("TURKISH_CLIP_TRANSFORMERS4_PYTHON")


def outputs(python: str, folder: Path) -> dict:
    run = subprocess.run(
        [python, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not TRANSFORMERS4_PYTHON,
    reason="set TURKISH_CLIP_TRANSFORMERS4_PYTHON to a Python with transformers 4.57 "
    "(requirements-transformers4.txt); .ci/run does",
)
def test_converted_folder_loads_and_agrees_under_transformers4(converted_model_dir):
    folder = converted_model_dir
    new, old = outputs(sys.executable, folder), outputs(TRANSFORMERS4_PYTHON, folder)
    assert old["transformers"].startswith("4.57") and new["transformers"].startswith("5.")
    for key in ("text", "image", "logits_per_image", "loss", "text_features"):
        np.testing.assert_allclose(old[key], new[key], atol=1e-5)
    assert old["hidden_states"] == new["hidden_states"] == 3
    # Each follows its own transformers' CLIPModel: a tensor under 4, an output object under 5.
    assert (old["text_features_type"], new["text_features_type"]) == (
        "Tensor",
        "BaseModelOutputWithPooling",
    )
    batched = [old["pipeline_batched"], new["pipeline_batched"]]
    for old_rows, new_rows in [(old["pipeline"], new["pipeline"]), *zip(*batched)]:
        assert [row["label"] for row in old_rows] == [row["label"] for row in new_rows]
        for a, b in zip(old_rows, new_rows):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    for single, batched_rows in zip([new["pipeline"]] * 2, new["pipeline_batched"][::2]):
        assert [row["label"] for row in single] == [row["label"] for row in batched_rows]


@pytest.mark.skipif(
    not TRANSFORMERS4_PYTHON,
    reason="set TURKISH_CLIP_TRANSFORMERS4_PYTHON to a Python with transformers 4.57 "
    "(requirements-transformers4.txt); .ci/run does",
)
def test_a_siglip_student_folder_loads_and_agrees_under_transformers4(tmp_path):
    from builders import save_tiny_siglip_model_folder

    folder = save_tiny_siglip_model_folder(tmp_path / "siglip")
    new, old = outputs(sys.executable, folder), outputs(TRANSFORMERS4_PYTHON, folder)
    assert old["transformers"].startswith("4.57") and new["transformers"].startswith("5.")
    for key in ("text", "image", "logits_per_image", "text_features"):
        np.testing.assert_allclose(old[key], new[key], atol=1e-5)
    # The second image (50x40) is resized by each environment's Pillow, whose bicubic filters
    # differ by a level here and there between versions (12 and 13): what depends on it, the loss
    # and the batch's middle image, is checked in each environment on its own.
    signs = 2 * np.eye(2) - 1
    for result in (old, new):
        logits = np.array(result["pair_logits"])
        expected = np.log1p(np.exp(-signs * logits)).sum(axis=1).mean()  # SigLIP's sigmoid loss
        assert result["loss"] == pytest.approx(expected, abs=1e-5)
    old_batch, new_batch = old["pipeline_batched"], new["pipeline_batched"]
    pairs = [(old["pipeline"], new["pipeline"]), (old_batch[0], new_batch[0])]
    for old_rows, new_rows in pairs + [(old_batch[2], new_batch[2])]:
        assert [row["label"] for row in old_rows] == [row["label"] for row in new_rows]
        for a, b in zip(old_rows, new_rows):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    # Sigmoid scores, one per label: they need not sum to one.
    assert abs(sum(row["score"] for row in new["pipeline"]) - 1) > 1e-3
