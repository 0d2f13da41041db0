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
    for row in result:
        assert row["score"] == pytest.approx(expected[row["label"]], abs=1e-5)


def test_a_list_of_templates_averages_then_renormalises(classifier, model):
    templates = list(TURKISH_TEMPLATES[:5])
    result = classifier(IMAGE, candidate_labels=LABELS, hypothesis_template=templates)
    expected = expected_scores(model, LABELS, templates)
    single = expected_scores(model, LABELS, [DEFAULT_TEMPLATE])
    assert any(abs(expected[label] - single[label]) > 1e-4 for label in LABELS)
    for row in result:
        assert row["score"] == pytest.approx(expected[row["label"]], abs=1e-5)


def count_encoded_texts(pipe, monkeypatch) -> list[int]:
    """Records how many prompts each text-tower call of `pipe` embeds."""
    calls = []
    original = pipe.model.embed_token_ids

    def counting(token_ids, *args, **kwargs):
        calls.append(len(token_ids))
        return original(token_ids, *args, **kwargs)

    monkeypatch.setattr(pipe.model, "embed_token_ids", counting)
    return calls


def fresh_pipeline(model_dir, **kwargs):
    return pipeline(
        "zero-shot-image-classification", model=str(model_dir), trust_remote_code=True, **kwargs
    )


def test_same_labels_are_not_encoded_again(model_dir, monkeypatch):
    fresh = fresh_pipeline(model_dir)
    calls = count_encoded_texts(fresh, monkeypatch)
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


def images_of_sizes(tmp_path) -> list:
    rng = np.random.default_rng(9)
    sizes = [(48, 64), (30, 90), (64, 48), (33, 33), (70, 20)]
    pictures = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
    pictures[1].save(tmp_path / "iki.png")
    return [pictures[0], str(tmp_path / "iki.png"), *pictures[2:]]


def assert_same_results(got, expected):
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        assert [row["label"] for row in ours] == [row["label"] for row in theirs]
        for a, b in zip(ours, theirs):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def count_image_forwards(pipe) -> list[int]:
    sizes = []
    hook = lambda module, args, out: sizes.append(len(out.last_hidden_state))  # noqa: E731
    pipe.model.vision_model.register_forward_hook(hook)
    return sizes


@pytest.mark.parametrize("batch_size", [2, 3, 5])
def test_batched_lists_equal_one_by_one_with_one_forward_per_batch(
    model_dir, classifier, tmp_path, batch_size
):
    inputs = images_of_sizes(tmp_path)
    one_by_one = [classifier(image, candidate_labels=LABELS) for image in inputs]
    fresh = fresh_pipeline(model_dir)
    forwards = count_image_forwards(fresh)
    batched = fresh(inputs, candidate_labels=LABELS, batch_size=batch_size)
    assert_same_results(batched, one_by_one)
    assert forwards == [min(batch_size, 5 - start) for start in range(0, 5, batch_size)]


def test_generators_and_dataset_columns_are_batched_in_order(classifier, tmp_path):
    import datasets
    from transformers.pipelines.pt_utils import KeyDataset

    inputs = images_of_sizes(tmp_path)
    one_by_one = [classifier(image, candidate_labels=LABELS, top_k=2) for image in inputs]
    generated = classifier(
        (image for image in inputs), candidate_labels=LABELS, batch_size=2, top_k=2
    )
    assert_same_results(list(generated), one_by_one)
    pictures = [Image.open(path) if isinstance(path, str) else path for path in inputs]
    column = datasets.Dataset.from_dict({"image": pictures, "id": list(range(5))})
    from_dataset = classifier(
        KeyDataset(column, "image"), candidate_labels=LABELS, batch_size=3, top_k=2
    )
    assert_same_results(list(from_dataset), one_by_one)


def test_bad_batch_size_is_named(classifier):
    with pytest.raises(ValueError, match="batch_size"):
        classifier([IMAGE, IMAGE], candidate_labels=LABELS, batch_size=0)


def test_quantising_the_model_drops_the_cached_labels(model_dir):
    fresh = fresh_pipeline(model_dir)
    before = fresh(IMAGE, candidate_labels=LABELS)
    fresh.model.quantize_int8()
    after = fresh(IMAGE, candidate_labels=LABELS)
    reference = fresh_pipeline(model_dir, model_kwargs={"int8": True})(
        IMAGE, candidate_labels=LABELS
    )
    by_label = {row["label"]: row["score"] for row in after}
    assert any(abs(by_label[row["label"]] - row["score"]) > 1e-6 for row in before)
    for row in reference:
        assert by_label[row["label"]] == pytest.approx(row["score"], abs=1e-6)


@pytest.mark.parametrize(
    "edit",
    [
        # Adding a constant to every weight barely moves embeddings of LayerNorm-ed, nearly
        # zero-sum states, so these edits negate or shift one input column instead.
        lambda model: model.text_projection.weight.data.mul_(-1.0),
        lambda model: model.text_projection.weight.data[:, 0].add_(1.0),
        lambda model: model.text_model.embeddings.word_embeddings.weight.data.mul_(1.5),
        lambda model: model.text_model.load_state_dict(
            {k: v * 0.5 for k, v in model.text_model.state_dict().items()}
        ),
        lambda model: model.to(torch.float64),
    ],
    ids=["data-negate", "data-column", "data-mul", "load-state-dict", "dtype"],
)
def test_editing_the_text_weights_drops_the_cached_labels(model_dir, edit):
    fresh = fresh_pipeline(model_dir)
    fresh(IMAGE, candidate_labels=LABELS)
    edit(fresh.model)
    got = {row["label"]: row["score"] for row in fresh(IMAGE, candidate_labels=LABELS)}
    expected = expected_scores(fresh.model, LABELS, [DEFAULT_TEMPLATE])
    for label in LABELS:
        assert got[label] == pytest.approx(expected[label], abs=1e-5)


def test_more_labels_than_the_cache_holds_are_encoded_once(model_dir, monkeypatch):
    fresh = fresh_pipeline(model_dir, label_cache_size=2)
    calls = count_encoded_texts(fresh, monkeypatch)
    first = fresh([IMAGE, IMAGE], candidate_labels=LABELS, batch_size=1)
    assert sum(calls) == len(LABELS)  # two images, one call: each label encoded once
    assert fresh(IMAGE, candidate_labels=LABELS) == first[0]
    assert sum(calls) == len(LABELS)  # the cache grew to the label set in use
    fresh(IMAGE, candidate_labels=["uçak", "gemi"])
    fresh(IMAGE, candidate_labels=LABELS[:1])
    assert sum(calls) == len(LABELS) + 3  # back to two labels: "kedi" was evicted


@pytest.mark.parametrize("size", [0, -1, 2.5, "10"])
def test_bad_label_cache_size_is_named(model_dir, size):
    with pytest.raises(ValueError, match="label_cache_size"):
        fresh_pipeline(model_dir, label_cache_size=size)


def test_threads_sharing_a_pipeline_get_single_threaded_results(model_dir):
    from concurrent.futures import ThreadPoolExecutor

    label_sets = [LABELS, LABELS[1:], ["uçak", "gemi", "kedi"], LABELS[::-1] + ["tren"]]
    expected = {}
    reference = fresh_pipeline(model_dir)
    for labels in label_sets:
        expected[tuple(labels)] = reference(IMAGE, candidate_labels=labels)
    shared = fresh_pipeline(model_dir, label_cache_size=3)  # small: threads evict each other

    def run(index):
        labels = label_sets[index % len(label_sets)]
        return labels, shared(IMAGE, candidate_labels=labels)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(48)))
    for labels, result in results:
        assert_same_results([result], [expected[tuple(labels)]])


def test_a_pipeline_can_be_deep_copied_with_its_cache(classifier):
    import copy

    expected = classifier(IMAGE, candidate_labels=LABELS)
    copied = copy.deepcopy(classifier)
    assert_same_results([copied(IMAGE, candidate_labels=LABELS)], [expected])
