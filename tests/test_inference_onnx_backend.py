"""The onnxruntime backend against the torch model it was exported from: same embeddings, same
order, same label ensembling and zero-shot scores; Hub ids; clear errors for bad files."""

import shutil
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from conversion.onnx_export import FP32_TOLERANCE, INT8_MIN_COSINE
from inference.onnx_backend import OnnxTurkishCLIP, OnnxZeroShotClassifier
from turkish_clip import TurkishCLIPModel

# Lengths from 3 to about 20 tokens, in no order, so length-sorted batches reorder them.
TEXTS = [
    "sahilde koşan bir köpek ve onu izleyen yaşlı bir adam",
    "kedi",
    "İstanbul'da yağmurlu bir gün",
    "bir kedi fotoğrafı",
    "Işıklı, ılık bir akşamda çiçek satan çocuk",
    "ağaç",
    "kırmızı bir araba",
]
LABELS = ["kedi", "köpek", "deniz"]
TEMPLATES = ["bir {} fotoğrafı", "{} içeren bir resim"]


def noise_images(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [
        Image.fromarray(rng.integers(0, 256, (40 + 7 * i, 48, 3), dtype=np.uint8))
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def torch_model(tiny_onnx_dir: Path) -> TurkishCLIPModel:
    return TurkishCLIPModel.from_pretrained(tiny_onnx_dir).eval()


@pytest.fixture(scope="module")
def onnx_model(tiny_onnx_dir: Path) -> OnnxTurkishCLIP:
    return OnnxTurkishCLIP.from_pretrained(tiny_onnx_dir)


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_encode_text_matches_torch_in_input_order(torch_model, onnx_model, batch_size):
    expected = torch_model.encode_text(TEXTS, batch_size=batch_size, return_numpy=True)
    got = onnx_model.encode_text(TEXTS, batch_size=batch_size, return_numpy=True)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() <= FP32_TOLERANCE
    raw = onnx_model.encode_text(TEXTS, normalize=False)
    expected_raw = torch_model.encode_text(TEXTS, normalize=False)
    assert isinstance(raw, torch.Tensor)
    torch.testing.assert_close(raw, expected_raw, atol=1e-5, rtol=1e-4)


def test_encode_image_matches_torch_for_paths_and_single_images(torch_model, onnx_model, tmp_path):
    paths = []
    for index, image in enumerate(noise_images(5)):
        image.save(tmp_path / f"{index}.png")
        paths.append(tmp_path / f"{index}.png")
    expected = torch_model.encode_image(paths, batch_size=2, return_numpy=True)
    got = onnx_model.encode_image(paths, batch_size=2, return_numpy=True)
    assert np.abs(got - expected).max() <= FP32_TOLERANCE
    single = onnx_model.encode_image(paths[3], return_numpy=True)
    assert np.abs(single - expected[3:4]).max() <= FP32_TOLERANCE


def test_encode_labels_ensembles_as_torch_does(torch_model, onnx_model):
    expected = torch_model.encode_labels(LABELS, TEMPLATES, return_numpy=True)
    got = onnx_model.encode_labels(LABELS, TEMPLATES, return_numpy=True)
    assert np.abs(got - expected).max() <= FP32_TOLERANCE
    default = onnx_model.encode_labels(LABELS, return_numpy=True)
    assert np.abs(default - torch_model.encode_labels(LABELS, return_numpy=True)).max() <= 1e-4


def test_bad_input_is_refused_as_the_torch_model_refuses_it(onnx_model):
    with pytest.raises(ValueError, match="text 1 is empty"):
        onnx_model.encode_text(["kedi", "  "])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        onnx_model.encode_text(["kedi"], batch_size=0)
    with pytest.raises(ValueError, match="empty list of images"):
        onnx_model.encode_image([])
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        onnx_model.encode_image(["nowhere.jpg"])


def test_int8_backend_uses_the_quantised_files(tiny_onnx_dir, onnx_model):
    int8 = OnnxTurkishCLIP.from_pretrained(tiny_onnx_dir, int8=True)
    assert int8.text_path.name == "text_model_quantized.onnx"
    fp32_rows, int8_rows = onnx_model.encode_text(TEXTS), int8.encode_text(TEXTS)
    assert not torch.equal(fp32_rows, int8_rows)
    assert (fp32_rows * int8_rows).sum(dim=-1).min() >= INT8_MIN_COSINE
    images = noise_images(3)
    cosines = (onnx_model.encode_image(images) * int8.encode_image(images)).sum(dim=-1)
    assert cosines.min() >= INT8_MIN_COSINE


def test_zero_shot_scores_match_the_pipeline(tiny_onnx_dir, onnx_model):
    pipe = pipeline(
        "zero-shot-image-classification", model=str(tiny_onnx_dir), trust_remote_code=True
    )
    classifier = OnnxZeroShotClassifier(onnx_model)
    for image in noise_images(2):
        for templates in (None, TEMPLATES):
            options = {"candidate_labels": LABELS, "top_k": 2}
            if templates:
                options["hypothesis_template"] = templates
            expected, got = pipe(image, **options), classifier(image, **options)
            assert [item["label"] for item in got] == [item["label"] for item in expected]
            assert [item["score"] for item in got] == pytest.approx(
                [item["score"] for item in expected], abs=1e-4
            )
    assert onnx_model.logit_scale.item() == pytest.approx(pipe.model.logit_scale.item())


def test_hub_id_downloads_only_what_the_backend_needs(tiny_onnx_dir, monkeypatch):
    calls = []

    def snapshot(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(tiny_onnx_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    model = OnnxTurkishCLIP.from_pretrained("someone/turkish-clip", revision="abc123", int8=True)
    [(repo_id, revision, patterns)] = calls
    assert (repo_id, revision) == ("someone/turkish-clip", "abc123")
    assert "onnx/text_model_quantized.onnx" in patterns
    assert "onnx/vision_model_quantized.onnx" in patterns
    assert not any(
        pattern.endswith((".safetensors", "*", "text_model.onnx")) for pattern in patterns
    )
    assert model.encode_text(["kedi"]).shape == (1, 16)


def test_missing_onnx_file_says_how_to_export(tiny_onnx_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, folder)
    (folder / "onnx" / "vision_model_quantized.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"vision_model_quantized\.onnx not found.*--int8"):
        OnnxTurkishCLIP.from_pretrained(folder, int8=True)


def test_corrupt_onnx_file_gives_a_one_line_error_naming_it(tiny_onnx_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, folder)
    text = folder / "onnx" / "text_model.onnx"
    text.write_bytes(text.read_bytes()[:5000])  # a truncated download
    model = OnnxTurkishCLIP.from_pretrained(folder)
    with pytest.raises(ValueError, match=r"text_model\.onnx is not a readable ONNX model") as info:
        model.encode_text(["kedi"])
    assert "\n" not in str(info.value)


def test_wrong_tower_in_a_file_is_refused(tiny_onnx_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, folder)
    shutil.copyfile(folder / "onnx" / "vision_model.onnx", folder / "onnx" / "text_model.onnx")
    with pytest.raises(ValueError, match=r"takes inputs \('pixel_values',\)"):
        OnnxTurkishCLIP.from_pretrained(folder).encode_text(["kedi"])


# A SigLIP student: sigmoid scores with the exported logit_bias, 24 px images.


@pytest.fixture(scope="module")
def siglip_dirs(tmp_path_factory) -> Path:
    from builders import save_tiny_siglip_model_folder

    from conversion.onnx_export import export_onnx

    folder = save_tiny_siglip_model_folder(tmp_path_factory.mktemp("siglip") / "m", image_size=24)
    checks = export_onnx(folder)
    assert all(check.ok for check in checks)
    return folder


def test_a_siglip_students_onnx_towers_agree_with_torch(siglip_dirs):
    torch_model = TurkishCLIPModel.from_pretrained(siglip_dirs).eval()
    onnx_model = OnnxTurkishCLIP.from_pretrained(siglip_dirs)
    vision = onnx_model._session(onnx_model.vision_path).get_inputs()[0]
    assert vision.shape[1:] == [3, 24, 24]  # the tower's image size
    for encode, inputs in (("encode_text", TEXTS), ("encode_image", noise_images(4))):
        expected = getattr(torch_model, encode)(inputs, return_numpy=True)
        got = getattr(onnx_model, encode)(inputs, return_numpy=True)
        assert np.abs(got - expected).max() <= FP32_TOLERANCE
    assert onnx_model.logit_bias.item() == pytest.approx(torch_model.logit_bias.item())
    assert onnx_model.logit_scale.item() == pytest.approx(torch_model.logit_scale.item())


def test_a_siglip_students_onnx_classifier_scores_as_the_pipeline(siglip_dirs):
    onnx_classifier = OnnxZeroShotClassifier(OnnxTurkishCLIP.from_pretrained(siglip_dirs))
    classifier = pipeline(
        "zero-shot-image-classification", model=str(siglip_dirs), trust_remote_code=True
    )
    image = noise_images(1)[0]
    expected = classifier(image, candidate_labels=LABELS, hypothesis_template=TEMPLATES)
    got = onnx_classifier(image, candidate_labels=LABELS, hypothesis_template=TEMPLATES)
    assert [row["label"] for row in got] == [row["label"] for row in expected]
    for ours, theirs in zip(got, expected):
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-4)
    assert abs(sum(row["score"] for row in got) - 1) > 1e-3  # sigmoid: labels scored alone


def test_a_clip_models_onnx_backend_has_no_bias(onnx_model):
    assert onnx_model.logit_bias is None
