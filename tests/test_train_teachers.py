"""train.py without --student: a new student built from a teacher (a tiny random SiglipModel, and
a CLIPModel of another patch size and width than the tiny student's), trained, written, loaded,
and scoring as its teacher's family does; unsupported teachers refused before any training."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import (
    SIGLIP_LOGIT_BIAS,
    SIGLIP_LOGIT_SCALE,
    noise_image,
    parallel_captions,
    save_tiny_bert,
    save_tiny_siglip_teacher,
    save_tiny_teacher,
    write_tsv,
)
from PIL import Image
from test_conversion_towers import mismatched_folder, siglip2_folder

import train

LABELS = ["kırmızı kedi", "mavi otobüs", "yeşil fil", "sarı tekne"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("teachers")
    pairs = parallel_captions()
    return {
        "root": root,
        "bert": save_tiny_bert(root / "bert"),
        "siglip": save_tiny_siglip_teacher(root / "siglip"),
        "clip": save_tiny_teacher(root / "clip"),  # patch 16, width 32: not the student's 8 / 64
        "train": write_tsv(root / "train.tsv", pairs),
        "eval": write_tsv(root / "eval.tsv", pairs[:30]),
        "cache": root / "cache",
    }


pytestmark = pytest.mark.usefixtures("one_thread")


def run(setup, teacher: Path, output: Path, *extra: str) -> int:
    argv = ["--teacher", str(teacher), "--text-encoder", str(setup["bert"])]
    argv += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    argv += ["--output", str(output), "--cache-dir", str(setup["cache"]), "--batch-size", "16"]
    return train.main(argv + list(extra))


@pytest.fixture(scope="module", params=["siglip", "clip"])
def trained(request, setup, tmp_path_factory) -> tuple[str, Path, Path]:
    """(family, teacher folder, trained student folder)."""
    family = request.param
    output = tmp_path_factory.mktemp("trained") / family
    schedule = ["--frozen-epochs", "1", "--epochs", "4", "--learning-rate", "1e-2"]
    assert run(setup, setup[family], output, *schedule) == 0
    return family, setup[family], output


def teacher_model(family: str, folder: Path):
    from transformers import CLIPModel, SiglipModel

    return (SiglipModel if family == "siglip" else CLIPModel).from_pretrained(folder).eval()


def photos(root: Path) -> list[Image.Image]:
    sizes = [(48, 40), (32, 32), (90, 33)]
    return [Image.open(noise_image(root / f"{i}.png", i, size)) for i, size in enumerate(sizes)]


def test_the_student_learns_its_teachers_text_embeddings(trained):
    _, _, output = trained
    report = json.loads((output / "eval.json").read_text())
    losses = [row["loss"] for row in report["training_loss"]]
    assert len(losses) == 5 and losses[-1] < losses[0] / 2
    before, *_, after = report["evaluations"]
    assert after["mse"] < before["mse"] / 2 and after["recall@1"] > before["recall@1"]


def test_the_folder_loads_and_its_image_embeddings_are_the_teachers(trained, tmp_path):
    from transformers import AutoModel, AutoProcessor

    family, teacher_folder, output = trained
    model = AutoModel.from_pretrained(output, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(output, trust_remote_code=True)
    teacher = teacher_model(family, teacher_folder)
    assert model.config.projection_dim == (24 if family == "siglip" else 16)
    assert model.logit_scale.item() == pytest.approx(teacher.logit_scale.item())
    if family == "siglip":
        assert model.logit_bias.item() == pytest.approx(teacher.logit_bias.item())
        assert model.config.vision_config.model_type == "siglip_vision_model"
    else:
        assert model.logit_bias is None
        assert model.config.vision_config.patch_size == 16
    pixels = processor(images=photos(tmp_path))["pixel_values"]
    with torch.no_grad():
        ours = model.get_image_features(pixels).pooler_output
        theirs = teacher.get_image_features(pixel_values=pixels).pooler_output
    normalize = torch.nn.functional.normalize
    torch.testing.assert_close(
        normalize(ours, dim=-1), normalize(theirs, dim=-1), atol=1e-5, rtol=0
    )


def test_pipeline_scores_follow_the_teachers_family(trained, tmp_path):
    from transformers import AutoModel, pipeline

    family, _, output = trained
    model = AutoModel.from_pretrained(output, trust_remote_code=True).eval()
    classifier = pipeline(
        "zero-shot-image-classification", model=str(output), trust_remote_code=True
    )
    image = photos(tmp_path)[0]
    result = {row["label"]: row["score"] for row in classifier(image, candidate_labels=LABELS)}
    image_embed = model.encode_image(image, return_numpy=True)[0]
    labels = model.encode_labels(LABELS, return_numpy=True)
    logits = labels @ image_embed * np.exp(model.logit_scale.item())
    if family == "siglip":
        assert model.logit_scale.item() == pytest.approx(SIGLIP_LOGIT_SCALE)
        expected = 1 / (1 + np.exp(-(logits + SIGLIP_LOGIT_BIAS)))
        assert abs(sum(result.values()) - 1) > 1e-3  # each label on its own
    else:
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert sum(result.values()) == pytest.approx(1.0, abs=1e-5)
    for label, score in zip(LABELS, expected):
        assert result[label] == pytest.approx(float(score), abs=1e-5)


def test_the_card_names_the_teacher_the_image_tower_and_the_scoring_rule(trained):
    family, teacher_folder, output = trained
    card = (output / "README.md").read_text()
    assert f"Teacher: local `{teacher_folder.name}`" in card
    if family == "siglip":
        assert "Image tower: SigLIP ViT (`siglip_vision_model`)" in card
        assert "sigmoid(exp(logit_scale) * cosine + logit_bias)" in card
    else:
        assert "Image tower: CLIP ViT (`clip_vision_model`)" in card and "patch 16" in card
        assert "softmax over the labels" in card


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (save_tiny_bert, "a text-only model"),
        (siglip2_folder, "NaFlex SigLIP 2"),
        (mismatched_folder, "mismatched image size"),
    ],
)
def test_unsupported_teachers_are_refused_before_any_training(
    setup, tmp_path, capsys, make, message
):
    teacher = make(tmp_path / "teacher")
    capsys.readouterr()  # saving the teacher's weights drew a progress bar
    cache = tmp_path / "cache"
    argv = ["--teacher", str(teacher), "--text-encoder", str(setup["bert"])]
    argv += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    argv += ["--output", str(tmp_path / "out"), "--cache-dir", str(cache)]
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --teacher {teacher}: ") and message in err
    assert not (tmp_path / "out").exists() and not cache.exists()
    assert not (tmp_path / "out.checkpoints").exists()


def test_without_student_a_text_encoder_is_needed(setup, tmp_path, capsys):
    argv = ["--teacher", str(setup["siglip"]), "--train", str(setup["train"])]
    argv += ["--eval", str(setup["eval"]), "--output", str(tmp_path / "out")]
    assert train.main(argv) == 1
    assert "--student or --text-encoder is needed" in capsys.readouterr().err


def test_publishing_uploads_the_card_naming_teacher_tower_and_scoring(
    trained, fake_api, monkeypatch, capsys
):
    import hub_upload

    family, teacher_folder, output = trained
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    argv = ["push", str(output), "--repo-id", "me/tr-student", "--include", "eval.json"]
    assert hub_upload.main(argv) == 0, capsys.readouterr().err
    (api,) = fake_api.instances
    [sent] = api.commits
    assert sent["README.md"] == (output / "README.md").read_bytes()
    card = sent["README.md"].decode("utf-8")
    tower = "SigLIP ViT" if family == "siglip" else "CLIP ViT"
    rule = "sigmoid(" if family == "siglip" else "softmax over the labels"
    assert f"`{teacher_folder.name}`" in card and tower in card and rule in card


def test_a_student_of_another_width_than_the_teacher_is_refused(setup, tmp_path, capsys):
    from builders import save_tiny_model_folder

    student = save_tiny_model_folder(tmp_path / "student")  # 16-dimensional; the teacher's 24
    argv = ["--student", str(student), "--teacher", str(setup["siglip"])]
    argv += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    argv += ["--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    capsys.readouterr()
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    assert "embeds in 24 dimensions" in err and "in 16" in err
    assert not (tmp_path / "out").exists()
