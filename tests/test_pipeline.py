"""The zero-shot pipeline: Turkish templates, ensembling, label cache, errors."""

import math

import numpy as np
import pytest
import torch
from builders import save_tiny_model_folder
from PIL import Image
from transformers import AutoModel, pipeline

from turkish_clip import DEFAULT_TEMPLATE, TURKISH_TEMPLATES

LABELS = ["kedi", "köpek", "araba", "sahilde bir insan"]
IMAGE = Image.fromarray(np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # A temperature of 2 instead of 100 keeps the random model's scores away from 0 and 1, so that
    # differences between template sets show in them.
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return save_tiny_model_folder(folder, logit_scale_init_value=math.log(2.0))


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("zero-shot-image-classification", model=str(model_dir), trust_remote_code=True)


@pytest.fixture(scope="module")
def model(model_dir):
    return AutoModel.from_pretrained(model_dir, trust_remote_code=True)


def expected_scores(model, labels, templates):
    """Softmax of scaled cosines, from encode_text/encode_image, one template set per label."""
    rows = []
    for label in labels:
        embeds = model.encode_text([t.format(label) for t in templates])
        rows.append(torch.nn.functional.normalize(embeds.mean(dim=0), dim=-1))
    image = model.encode_image(IMAGE)
    logits = image @ torch.stack(rows).t() * model.logit_scale.exp()
    return dict(zip(labels, logits.softmax(dim=-1)[0].tolist()))


def test_scores_sum_to_one_are_sorted_and_use_the_turkish_template(classifier, model):
    result = classifier(IMAGE, candidate_labels=LABELS)
    scores = [row["score"] for row in result]
    assert sorted(row["label"] for row in result) == sorted(LABELS)
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)
    expected = expected_scores(model, LABELS, [DEFAULT_TEMPLATE])
    assert DEFAULT_TEMPLATE == "bir {} fotoğrafı"
    for row in result:
        assert row["score"] == pytest.approx(expected[row["label"]], abs=1e-5)


def test_a_list_of_templates_averages_then_renormalises(classifier, model):
    assert classifier.templates == TURKISH_TEMPLATES
    templates = list(TURKISH_TEMPLATES[:5])
    result = classifier(IMAGE, candidate_labels=LABELS, hypothesis_template=templates)
    expected = expected_scores(model, LABELS, templates)
    single = expected_scores(model, LABELS, [DEFAULT_TEMPLATE])
    assert any(abs(expected[label] - single[label]) > 1e-4 for label in LABELS)
    for row in result:
        assert row["score"] == pytest.approx(expected[row["label"]], abs=1e-5)


def test_same_labels_are_not_encoded_again(model_dir, monkeypatch):
    fresh = pipeline("zero-shot-image-classification", model=str(model_dir), trust_remote_code=True)
    calls = []
    original = fresh.model.get_text_features

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(fresh.model, "get_text_features", counting)
    first = fresh(IMAGE, candidate_labels=LABELS)
    assert sum(calls) == len(LABELS)
    second = fresh(IMAGE, candidate_labels=LABELS)
    assert sum(calls) == len(LABELS)
    assert first == second
    fresh(IMAGE, candidate_labels=LABELS + ["uçak"])
    assert sum(calls) == len(LABELS) + 1
    fresh(IMAGE, candidate_labels=LABELS, hypothesis_template="{} görüntüsü")
    assert sum(calls) == 2 * len(LABELS) + 1


def test_top_k_and_several_images(classifier, tmp_path):
    IMAGE.save(tmp_path / "foto.jpg")
    results = classifier([IMAGE, str(tmp_path / "foto.jpg")], candidate_labels=LABELS, top_k=2)
    assert len(results) == 2 and all(len(result) == 2 for result in results)


def test_a_label_given_in_nfd_scores_like_nfc(classifier):
    import unicodedata

    nfd = [unicodedata.normalize("NFD", label) for label in LABELS]
    by_nfc = {row["label"]: row["score"] for row in classifier(IMAGE, candidate_labels=LABELS)}
    by_nfd = classifier(IMAGE, candidate_labels=nfd)
    for row in by_nfd:
        assert row["score"] == pytest.approx(by_nfc[row["label"]], abs=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"candidate_labels": []}, ValueError, "empty list of labels"),
        ({"candidate_labels": ["kedi", " "]}, ValueError, "label 1 is empty"),
        ({"candidate_labels": ["kedi", 7]}, TypeError, "label 1 is a int"),
        ({"candidate_labels": ["kedi"], "hypothesis_template": "şablonsuz"}, ValueError, "'{}'"),
        ({"candidate_labels": ["kedi"], "hypothesis_template": []}, ValueError, "empty"),
        ({"candidate_labels": ["kedi"], "top_k": 0}, ValueError, "top_k"),
        ({}, ValueError, "candidate_labels is required"),
        ({"candidate_labels": ["kedi"], "hypothesis_templates": ["{}"]}, TypeError, "templates"),
    ],
)
def test_bad_arguments_are_named(classifier, kwargs, error, message):
    with pytest.raises(error, match=message):
        classifier(IMAGE, **kwargs)


def test_unreadable_image_is_named(classifier, tmp_path):
    path = tmp_path / "bozuk.jpg"
    path.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="bozuk.jpg"):
        classifier(str(path), candidate_labels=LABELS)


def test_long_labels_are_truncated(classifier):
    long_label = " ".join(["kedi"] * 700)
    with pytest.warns(UserWarning, match="truncated"):
        result = classifier(IMAGE, candidate_labels=[long_label, "köpek"])
    assert len(result) == 2


def test_int8_is_selectable_when_loading_the_pipeline(model_dir, classifier):
    quantised = pipeline(
        "zero-shot-image-classification",
        model=str(model_dir),
        trust_remote_code=True,
        model_kwargs={"int8": True},
    )
    assert quantised.model.is_int8
    full = {row["label"]: row["score"] for row in classifier(IMAGE, candidate_labels=LABELS)}
    for row in quantised(IMAGE, candidate_labels=LABELS):
        assert row["score"] == pytest.approx(full[row["label"]], abs=0.02)
