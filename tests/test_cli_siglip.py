"""The command line on a tiny random SigLIP student: an index that searches, classify printing
sigmoid scores (each label on its own, so they need not sum to one), evaluate, and the Ray engine
writing the same index."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from builders import SIGLIP_LOGIT_BIAS, noise_image, save_tiny_siglip_model_folder
from transformers import AutoModel

import cli
from search.image_index import load_index

LABELS = ["kedi", "köpek", "deniz", "araba"]


pytestmark = pytest.mark.usefixtures("restore_library_logging")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_siglip_model_folder(tmp_path_factory.mktemp("siglip") / "model")


@pytest.fixture(scope="module")
def model(model_dir):
    return AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for seed, name in enumerate(["a.png", "b.png", "sub/c.png", "sub/d.png"]):
        noise_image(folder / name, seed)
    return folder


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def sigmoid_scores(model, image: Path, labels: list[str]) -> np.ndarray:
    """SigLIP's rule written out: sigmoid(exp(logit_scale) * cosine + logit_bias) per label."""
    image_embed = model.encode_image([image], return_numpy=True)[0]
    label_embeds = model.encode_labels(labels, return_numpy=True)
    logits = label_embeds @ image_embed * np.exp(model.logit_scale.item()) + SIGLIP_LOGIT_BIAS
    return 1 / (1 + np.exp(-logits))


def test_an_index_built_with_a_siglip_student_searches(capsys, tmp_path, photos, model_dir, model):
    index = tmp_path / "index"
    argv = ["index", photos, "--index", index, "--model", model_dir, "-q", "--exact-decode"]
    code, out, _ = run(capsys, *argv)  # float32, as the model below
    assert code == 0 and "4 images" in out
    built = load_index(index)
    paths = [photos / entry["path"] for entry in built.files]
    np.testing.assert_allclose(
        built.embeddings, model.encode_image(paths, return_numpy=True), atol=1e-5
    )
    code, out, _ = run(
        capsys, "search", "--image", photos / "sub/c.png", "--index", index, "--json"
    )
    hits = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and hits[0]["path"] == str((photos / "sub/c.png").resolve())
    query = "sahilde koşan bir köpek"
    code, out, _ = run(capsys, "search", query, "--index", index, "--top-k", 4, "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    cosines = built.embeddings @ model.encode_text([query], return_numpy=True)[0]
    order = np.argsort(-cosines)
    assert [hit["path"] for hit in hits] == [str(paths[i].resolve()) for i in order]
    assert [hit["score"] for hit in hits] == pytest.approx(cosines[order], abs=1e-5)


def test_classify_prints_sigmoid_scores_that_need_not_sum_to_one(capsys, photos, model_dir, model):
    image = photos / "a.png"
    base = ["classify", image, "--labels", *LABELS, "--model", model_dir, "-q"]
    code, out, _ = run(capsys, *base, "--json")
    assert code == 0
    [result] = [json.loads(line) for line in out.splitlines()]
    scores = {row["label"]: row["score"] for row in result["labels"]}
    expected = sigmoid_scores(model, image, LABELS)
    assert [scores[label] for label in LABELS] == pytest.approx(expected.tolist(), abs=1e-5)
    assert abs(sum(scores.values()) - 1) > 1e-3
    code, out, _ = run(capsys, *base)
    assert code == 0
    for label, score in zip(LABELS, expected):
        assert f"{score:7.2%}  {label}" in out


def test_evaluate_ranks_with_a_siglip_student(capsys, tmp_path, model_dir, model):
    root = tmp_path / "dataset"
    for index, label in enumerate(LABELS):
        noise_image(root / label / "0.png", 50 + index)
    code, out, _ = run(capsys, "evaluate", "--images", root, "--model", model_dir, "--json")
    assert code == 0
    report = json.loads(out)
    folders = sorted(LABELS)
    image_embeds = model.encode_image([root / f / "0.png" for f in folders], return_numpy=True)
    logits = image_embeds @ model.encode_labels(folders, return_numpy=True).T
    hits = np.mean(np.argmax(logits, axis=1) == np.arange(len(folders)))
    assert report["single"]["top1"] == pytest.approx(hits)


def test_the_ray_engine_writes_the_same_index(capsys, tmp_path, photos, model_dir):
    import ray

    from search import ray_engine

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray_engine.start_ray(num_cpus=2)
    try:
        local, distributed = tmp_path / "local", tmp_path / "ray"
        base = ["index", photos, "--model", model_dir, "--batch-size", 3, "-q"]
        # Ray's workers embed in float32, as the local engine does on --backend torch.
        assert run(capsys, *base, "--index", local, "--backend", "torch")[0] == 0
        assert run(capsys, *base, "--index", distributed, "--engine", "ray")[0] == 0
    finally:
        ray.shutdown()
    one, other = load_index(local), load_index(distributed)
    assert one.files == other.files
    np.testing.assert_allclose(one.embeddings, other.embeddings, atol=1e-5)
