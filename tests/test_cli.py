"""The command line on a tiny random model: outputs checked against the model's own embeddings and
against hand-computed metrics."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import (
    replace_model_code,
    retype_model_folder,
    save_tiny_model_folder,
    without_backend_note,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import AutoModel

import cli
from inference import loading
from search import image_index
from turkish_clip.configuration_turkish_clip import check_templates

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ["bir {} fotoğrafı", "{} içeren bir resim"]


pytestmark = pytest.mark.usefixtures("restore_library_logging")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def model(model_dir: Path):
    return AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()


def noise_image(path: Path, seed: int) -> Path:
    """Random pixels: unlike solid colours, they give the random model clearly distinct images."""
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def hand_label_embeds(model, labels: list[str], templates: list[str]) -> np.ndarray:
    """Prompt ensembling written out: normalised prompt embeddings averaged, then renormalised."""
    rows = []
    for label in labels:
        prompts = [template.format(label) for template in templates]
        mean = model.encode_text(prompts, return_numpy=True).mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows)


# Pure computations against hand values.


def test_help_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "cli.py", "--help"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("classify", "index", "search", "evaluate"):
        assert command in result.stdout


def test_classify_json_matches_the_model(capsys, tmp_path, model_dir, model) -> None:
    images = [noise_image(tmp_path / f"{i}.png", i) for i in range(2)]
    labels = ["kedi", "köpek", "deniz"]
    code, out, _ = run(
        capsys, "classify", *images, "--labels", *labels, "--json", "--model", model_dir
    )
    assert code == 0
    results = json_lines(out)
    assert [result["image"] for result in results] == [str(image) for image in images]
    scale = model.logit_scale.exp().item()
    label_embeds = hand_label_embeds(model, labels, [model.config.default_template])
    expected = softmax(scale * model.encode_image(images, return_numpy=True) @ label_embeds.T)
    for result, probabilities in zip(results, expected):
        scores = [item["score"] for item in result["labels"]]
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)
        by_label = {item["label"]: item["score"] for item in result["labels"]}
        assert [by_label[label] for label in labels] == pytest.approx(probabilities, abs=1e-4)


def test_classify_ensembles_templates_and_honours_top_k(capsys, tmp_path, model_dir, model):
    image = noise_image(tmp_path / "a.png", 3)
    labels = ["kedi", "köpek", "deniz", "orman"]
    code, out, _ = run(
        capsys,
        "classify",
        image,
        "--labels",
        *labels,
        "--template",
        *TEMPLATES,
        "--top-k",
        2,
        "--json",
        "--model",
        model_dir,
    )
    assert code == 0
    [result] = json_lines(out)
    scale = model.logit_scale.exp().item()
    image_embed = model.encode_image([image], return_numpy=True)[0]
    probabilities = softmax(scale * hand_label_embeds(model, labels, TEMPLATES) @ image_embed)
    best = np.argsort(-probabilities)[:2]
    assert [item["label"] for item in result["labels"]] == [labels[i] for i in best]
    assert [item["score"] for item in result["labels"]] == pytest.approx(probabilities[best], 1e-4)


def test_classify_table_reports_unreadable_image_and_goes_on(capsys, tmp_path, model_dir) -> None:
    good = noise_image(tmp_path / "good.png", 0)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(os.urandom(200))
    code, out, err = run(
        capsys, "classify", bad, good, "--labels", "kedi", "köpek", "--model", model_dir
    )
    assert code == 1
    assert "bad.jpg" in err and "Traceback" not in err
    lines = out.splitlines()
    assert lines[0] == str(good)
    assert sorted(line.split()[-1] for line in lines[1:]) == ["kedi", "köpek"]


@pytest.mark.parametrize("labels", [[], [" "]])
def test_classify_refuses_empty_labels(capsys, tmp_path, model_dir, labels) -> None:
    image = noise_image(tmp_path / "a.png", 0)
    code, _, err = run(capsys, "classify", image, "--model", model_dir, "--labels", *labels)
    assert code != 0
    # argparse prints its usage first; the last line is the one-line error
    assert "--labels" in err.strip().splitlines()[-1] and "Traceback" not in err


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for seed, name in enumerate(["a.png", "b.PNG", "sub/c.png", "sub/deeper/d.png"]):
        noise_image(folder / name, seed)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(os.urandom(300))
    return folder


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Counts model loads and the image files that reach the embedding step."""
    from search import engines, updating

    seen = {"loads": 0, "images": []}
    load, engine_load = updating.load_model, engines.LocalEngine.load_model
    embed = engines.embed_images

    def counting_load(*args, **kwargs):
        seen["loads"] += 1
        return load(*args, **kwargs)

    def counting_engine_load(*args, **kwargs):
        seen["loads"] += 1
        return engine_load(*args, **kwargs)

    def counting_embed(model, paths, *args, **kwargs):
        seen["images"] += [Path(path) for path in paths]
        return embed(model, paths, *args, **kwargs)

    monkeypatch.setattr(updating, "load_model", counting_load)  # a model checked, not used
    monkeypatch.setattr(engines.LocalEngine, "load_model", counting_engine_load)
    monkeypatch.setattr(engines, "embed_images", counting_embed)
    return seen


def test_index_embeds_every_image_and_skips_unreadable(capsys, tmp_path, photos, model_dir, model):
    index = tmp_path / "index"
    code, out, err = run(capsys, "index", photos, "--index", index, "--model", model_dir)
    assert code == 0
    assert "broken.jpg" in err and "Traceback" not in err
    assert "4 images" in out and "1 unreadable" in out
    meta = json.loads((index / "meta.json").read_text())
    assert (meta["model"], meta["revision"], meta["dim"]) == (str(model_dir.resolve()), None, 16)
    assert meta["root"] == str(photos.resolve())
    assert [entry["path"] for entry in meta["unreadable"]] == ["broken.jpg"]
    files = json_lines((index / meta["files"]).read_text())
    paths = [entry["path"] for entry in files]
    assert paths == ["a.png", "b.PNG", "sub/c.png", "sub/deeper/d.png"]
    assert files[0]["size"] == (photos / "a.png").stat().st_size
    embeddings = np.load(index / meta["embeddings"])
    assert embeddings.dtype == np.float32 and embeddings.shape == (4, 16)
    # By default a folder without ONNX files embeds on torch int8 (checked against float32 first).
    int8 = loading.load_model(str(model_dir), int8=True)
    expected = int8.encode_image([photos / path for path in paths], return_numpy=True)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_search_by_image_finds_itself_first(capsys, tmp_path, photos, model_dir) -> None:
    index = tmp_path / "index"
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 0
    for name in ["a.png", "sub/c.png"]:
        code, out, _ = run(capsys, "search", "--image", photos / name, "--index", index, "--json")
        assert code == 0
        hits = json_lines(out)
        assert len(hits) == 4  # top-k 10, capped at the index size
        assert hits[0]["path"] == str((photos / name).resolve())
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
        assert all(hit["score"] < 0.9999 for hit in hits[1:])


def test_search_by_text_ranks_by_cosine(capsys, tmp_path, photos, model_dir, model) -> None:
    index = tmp_path / "index"
    argv = ["index", photos, "--index", index, "--model", model_dir, "--exact-decode"]  # float32
    assert run(capsys, *argv)[0] == 0
    code, out, _ = run(
        capsys, "search", "sahilde koşan bir köpek", "--index", index, "--top-k", 2, "--json"
    )
    assert code == 0
    hits = json_lines(out)
    paths = ["a.png", "b.PNG", "sub/c.png", "sub/deeper/d.png"]
    text = model.encode_text(["sahilde koşan bir köpek"], return_numpy=True)[0]
    scores = model.encode_image([photos / p for p in paths], return_numpy=True) @ text
    best = np.argsort(-scores)[:2]
    assert [hit["path"] for hit in hits] == [str(photos.resolve() / paths[i]) for i in best]
    assert [hit["score"] for hit in hits] == pytest.approx(scores[best], abs=1e-5)
    assert [hit["rank"] for hit in hits] == [1, 2]


def test_index_update_adds_changes_and_drops_without_reembedding(
    capsys, tmp_path, photos, model_dir, counting
) -> None:
    index = tmp_path / "index"
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 0
    assert len(counting["images"]) == 5  # four images and the broken file
    counting["images"].clear()

    (photos / "b.PNG").unlink()
    added = noise_image(photos / "sub/e.png", 10)
    changed = noise_image(photos / "a.png", 11)
    os.utime(changed, ns=(1, 1))  # a new mtime whatever the clock's resolution
    code, out, err = run(capsys, "index", photos, "--index", index)
    assert code == 0
    assert "1 added, 1 updated, 1 removed, 2 unchanged, 1 unreadable" in out
    assert "broken.jpg" in err and "unchanged since the last run" in err
    # Only the new and the changed file reached the model; the broken one was not retried.
    assert counting["images"] == [changed, added]

    _, out, _ = run(capsys, "search", "--image", added, "--index", index, "--json")
    hits = json_lines(out)
    assert hits[0]["path"] == str(added.resolve())
    assert str((photos / "b.PNG").resolve()) not in [hit["path"] for hit in hits]
    assert len(hits) == 4

    loads = counting["loads"]
    code, out, _ = run(capsys, "index", photos, "--index", index)
    assert code == 0 and "up to date" in out
    assert counting["loads"] == loads  # nothing to embed: the model is not even loaded


def test_interrupted_index_write_keeps_the_previous_index(
    capsys, tmp_path, photos, model_dir, monkeypatch
) -> None:
    index = tmp_path / "index"
    write = image_index._write_atomically

    def crash_on_meta(path: Path, writer) -> None:
        if path.name == "meta.json":
            raise KeyboardInterrupt
        write(path, writer)

    monkeypatch.setattr(image_index, "_write_atomically", crash_on_meta)
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 130
    assert image_index.load_index(index) is None  # the first write never became an index
    monkeypatch.undo()
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 0
    before = sorted(p.name for p in index.iterdir())

    noise_image(photos / "new.png", 20)
    (index / ".meta.json.x1y2.tmp").write_text("{")  # as a killed process leaves it
    monkeypatch.setattr(image_index, "_write_atomically", crash_on_meta)
    assert run(capsys, "index", photos, "--index", index)[0] == 130
    old = image_index.load_index(index)
    assert len(old.files) == 4 and "new.png" not in [entry["path"] for entry in old.files]
    monkeypatch.undo()
    assert run(capsys, "index", photos, "--index", index)[0] == 0
    assert len(image_index.load_index(index).files) == 5
    # Leftovers of the crashed runs are gone: one generation of data files and meta.json.
    after = sorted(p.name for p in index.iterdir())
    assert before == [".lock", "embeddings.1.npy", "files.1.jsonl", "meta.json"]
    assert after == [".lock", "embeddings.2.npy", "files.2.jsonl", "meta.json"]


def test_index_refuses_another_model(capsys, tmp_path, photos, model_dir) -> None:
    index = tmp_path / "index"
    other = save_tiny_model_folder(tmp_path / "other", seed=1)
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 0
    # Refused by content, even when no photo changed: a named model is never silently ignored.
    for command in (["index", photos], ["search", "deniz"]):
        code, out, err = run(capsys, *command, "--index", index, "--model", other)
        assert code == 1 and out == ""
        errors = [line for line in err.splitlines() if not line.startswith("skipped: ")]
        assert len(errors) == 1 and str(model_dir.resolve()) in errors[0]
        assert errors[0].startswith("error: ") and f"--index {index} --reembed" in errors[0]
    # The same model in another place is accepted, and recorded for the next runs.
    moved = shutil.copytree(model_dir, tmp_path / "moved")
    code, out, _ = run(capsys, "index", photos, "--index", index, "--model", moved)
    assert code == 0 and "up to date" in out
    assert json.loads((index / "meta.json").read_text())["model"] == str(moved.resolve())


def test_index_refuses_missing_folder_and_foreign_index_folder(capsys, tmp_path, photos) -> None:
    code, _, err = run(capsys, "index", tmp_path / "nowhere", "--index", tmp_path / "index")
    assert code == 1 and "nowhere" in err and "not found" in err
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    code, _, err = run(capsys, "index", photos, "--index", foreign)
    assert code == 1 and "holds no index" in err
    assert (foreign / "thesis.txt").read_text() == "keep me"


def test_search_needs_an_index_and_one_query(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "search", "deniz", "--index", tmp_path / "missing")
    assert code == 1 and "no index" in err
    code, _, err = run(capsys, "search", "--index", tmp_path / "missing")
    assert code == 1 and "--image" in err


@pytest.mark.parametrize("mapping", ["classes.txt", "classes.json"])
def test_evaluate_folder_matches_hand_accuracy(capsys, tmp_path, model_dir, model, mapping):
    labels = {"cat": "kedi", "dog": "köpek", "bird": "kuş", "sea": "deniz", "car": "araba"}
    labels["tree"] = "ağaç"
    root = tmp_path / "dataset"
    for index, folder in enumerate(labels):
        for i in range(2):
            noise_image(root / folder / f"{i}.png", 100 + 2 * index + i)
    if mapping == "classes.txt":
        (root / mapping).write_text("".join(f"{f}\t{label}\n" for f, label in labels.items()))
    else:
        (root / mapping).write_text(json.dumps(labels, ensure_ascii=False))
    code, out, _ = run(
        capsys,
        "evaluate",
        "--images",
        root,
        "--template",
        *TEMPLATES,
        "--json",
        "--model",
        model_dir,
    )
    assert code == 0
    report = json.loads(out)
    folders = sorted(labels)
    label_list = [labels[f] for f in folders]
    paths = [root / f / f"{i}.png" for f in folders for i in range(2)]
    targets = np.repeat(np.arange(len(folders)), 2)
    image_embeds = model.encode_image(paths, return_numpy=True)
    assert (report["images"], report["classes"], report["k"]) == (12, 6, 5)
    for name, templates in (("single", ["bir {} fotoğrafı"]), ("ensemble", TEMPLATES)):
        logits = image_embeds @ hand_label_embeds(model, label_list, templates).T
        ranked = np.argsort(-logits, axis=1)
        result = report[name]
        assert result["templates"] == templates
        assert result["top1"] == pytest.approx(np.mean(ranked[:, 0] == targets))
        assert result["topk"] == pytest.approx(np.mean((ranked[:, :5] == targets[:, None]).any(1)))
        per_class = [np.mean(ranked[targets == c, 0] == c) for c in range(len(folders))]
        assert [entry["top1"] for entry in result["per_class"]] == pytest.approx(per_class)
        assert [entry["label"] for entry in result["per_class"]] == label_list
        wrong = int((ranked[:, 0] != targets).sum())
        assert sum(entry["count"] for entry in result["confusions"]) == wrong


def test_evaluate_folder_table_and_missing_folder(capsys, tmp_path, model_dir) -> None:
    for index, folder in enumerate(["kedi", "köpek"]):
        noise_image(tmp_path / "data" / folder / "0.png", index)
    code, out, _ = run(capsys, "evaluate", "--images", tmp_path / "data", "--model", model_dir)
    assert code == 0
    assert "2 images, 2 classes" in out and "16 templates" in out and "top-2" in out
    code, _, err = run(capsys, "evaluate", "--images", tmp_path / "absent", "--model", model_dir)
    assert code == 1 and "absent" in err and "not found" in err


def test_evaluate_captions_matches_hand_recall(capsys, tmp_path, model_dir, model) -> None:
    names = [f"img{i}.png" for i in range(4)]
    for seed, name in enumerate(names):
        noise_image(tmp_path / "images" / name, seed + 50)
    (tmp_path / "images" / "broken.png").write_bytes(os.urandom(100))
    captions = [
        ("img0.png", "sahilde koşan bir köpek"),
        ("img1.png", "masada oturan kedi"),
        ("img2.png", "ormanda yürüyen adam"),
        ("img2.png", "parkta oynayan çocuk"),
        ("img3.png", "kırmızı bir araba"),
        ("broken.png", "mavi deniz"),
    ]
    tsv = tmp_path / "captions.tsv"
    tsv.write_text("".join(f"images/{name}\t{text}\n" for name, text in captions))
    code, out, err = run(capsys, "evaluate", "--captions", tsv, "--json", "--model", model_dir)
    assert code == 0 and "broken.png" in err
    report = json.loads(out)
    assert (report["captions"], report["images"]) == (5, 4)
    texts = model.encode_text([text for _, text in captions[:5]], return_numpy=True)
    images = model.encode_image([tmp_path / "images" / n for n in names], return_numpy=True)
    similarity = texts @ images.T
    owner = [0, 1, 2, 2, 3]
    text_rank = [int((similarity[i] > similarity[i, owner[i]]).sum()) for i in range(5)]
    image_rank = []
    for j in range(4):
        best = max(similarity[i, j] for i in range(5) if owner[i] == j)
        image_rank.append(int((similarity[:, j] > best).sum()))
    for k in (1, 5, 10):
        assert report["text_to_image"][f"R@{k}"] == pytest.approx(np.mean(np.less(text_rank, k)))
        assert report["image_to_text"][f"R@{k}"] == pytest.approx(np.mean(np.less(image_rank, k)))


def test_evaluate_captions_refuses_malformed_lines(capsys, tmp_path, model_dir) -> None:
    tsv = tmp_path / "captions.tsv"
    tsv.write_text("a.png\tbir kedi\nb.png without a tab\n")
    code, _, err = run(capsys, "evaluate", "--captions", tsv, "--model", model_dir)
    assert code == 1 and "line 2" in err


# Models: weights and configuration from a folder or an index, never its code.


def test_model_code_in_the_folder_never_runs(capsys, tmp_path, photos, model_dir, model) -> None:
    marker = tmp_path / "ran"
    folder = replace_model_code(Path(shutil.copytree(model_dir, tmp_path / "shared")), marker)
    image = noise_image(tmp_path / "a.png", 0)
    code, out, _ = run(
        capsys, "classify", image, "--labels", "kedi", "köpek", "--json", "--model", folder
    )
    assert code == 0
    scale = model.logit_scale.exp().item()
    label_embeds = hand_label_embeds(model, ["kedi", "köpek"], [model.config.default_template])
    expected = softmax(scale * model.encode_image([image], return_numpy=True)[0] @ label_embeds.T)
    by_label = {item["label"]: item["score"] for item in json_lines(out)[0]["labels"]}
    assert [by_label["kedi"], by_label["köpek"]] == pytest.approx(expected, abs=1e-4)
    index = tmp_path / "index"
    assert run(capsys, "index", photos, "--index", index, "--model", folder)[0] == 0
    code, out, _ = run(capsys, "search", "--image", photos / "a.png", "--index", index, "--json")
    assert code == 0 and json_lines(out)[0]["path"] == str((photos / "a.png").resolve())
    assert not marker.exists()


def test_index_naming_a_model_of_another_type_needs_the_flag(capsys, tmp_path, photos, model_dir):
    marker = tmp_path / "ran"
    folder = Path(shutil.copytree(model_dir, tmp_path / "shared"))
    index = tmp_path / "index"
    assert run(capsys, "index", photos, "--index", index, "--model", folder)[0] == 0
    retype_model_folder(folder, "clip_with_extras", marker)  # the folder is replaced in place
    for command in (["search", "deniz"], ["index", photos]):
        noise_image(photos / "new.png", 30)  # gives index something to embed
        code, out, err = run(capsys, *command, "--index", index)
        assert (code, out) == (1, "") and "Traceback" not in err
        error = err.splitlines()[-1]  # after index's warning about broken.jpg
        assert error.startswith("error: ") and str(folder.resolve()) in error
        assert "'clip_with_extras'" in error and "--trust-remote-code" in error
    # The flag trusts only a model named on the command line, never the one meta.json names.
    code, out, err = run(capsys, "search", "deniz", "--index", index, "--trust-remote-code")
    assert (code, out) == (1, "") and err.startswith("error: --trust-remote-code needs --model")
    assert not marker.exists()
    trusted = ["--trust-remote-code", "--model", folder, "-q"]
    code, out, _ = run(capsys, "search", "deniz", "--index", index, *trusted)
    assert code == 0 and len(out.splitlines()) == 4
    assert marker.exists()


def test_unsafe_or_missing_models_are_one_line_errors(capsys, tmp_path, model_dir) -> None:
    image = noise_image(tmp_path / "a.png", 0)
    pickled = Path(shutil.copytree(model_dir, tmp_path / "pickled"))
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    sha = "0123456789abcdef0123456789abcdef01234567"
    cases = [
        (["--model", pickled], [str(pickled), "pytorch_model.bin", "model.safetensors"]),
        (["--model", tmp_path / "gone"], [str(tmp_path / "gone"), "not found"]),
        (["--model", model_dir, "--revision", sha], [str(model_dir), "local folder"]),
        (["--model", "someone/clip", "--trust-remote-code"], ["someone/clip", "commit sha"]),
        (["--model", "someone/clip", "--revision", "main", "--trust-remote-code"], ["'main'"]),
    ]
    for options, named in cases:
        for command in (["classify", image, "--labels", "kedi"], ["evaluate", "--captions", image]):
            if command[0] == "evaluate":
                (tmp_path / "c.tsv").write_text("a.png\tbir kedi\n")
                command = ["evaluate", "--captions", tmp_path / "c.tsv"]
            code, out, err = run(capsys, *command, *options)
            assert (code, out) == (1, "")
            assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
            assert all(part in err for part in named), err


# Templates: the one check in configuration_turkish_clip, reported as one line.


@pytest.mark.parametrize("template", ["{name} için {}", "{0}", "{", "}{}", "{}{}", "kedi", "{!r}"])
def test_bad_templates_are_one_line_errors(capsys, tmp_path, model_dir, template) -> None:
    image = noise_image(tmp_path / "a.png", 0)
    for class_name in ("kedi", "köpek"):
        noise_image(tmp_path / "data" / class_name / "0.png", 1)
    for command in (
        ["classify", image, "--labels", "kedi", "köpek"],
        ["evaluate", "--images", tmp_path / "data"],
    ):
        code, out, err = run(capsys, *command, f"--template={template}", "--model", model_dir)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"error: template {template!r} ")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=[])))
def test_any_template_gives_one_line_or_passes_the_check(template: str) -> None:
    stderr = io.StringIO()
    argv = ["classify", "a.png", "--labels", "kedi", f"--template={template}"]
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main([*argv, "--model", "/nonexistent/model"])
    [line] = stderr.getvalue().splitlines()
    assert code == 1 and line.startswith("error: ") and line.isprintable()
    try:
        check_templates(template)
    except ValueError:
        assert line.startswith("error: template ")
    else:
        assert line == "error: model folder '/nonexistent/model' not found"


# File names reach the terminal escaped; --json keeps them exact.

HOSTILE = "kırmızı\x1b[31m\r\n\u202e"  # colours the terminal, rewrites the line, reverses text
NOT_UTF8 = os.fsdecode(b"\xff")  # a byte of a name that is not UTF-8, as Python carries it


def test_classify_escapes_names_and_json_keeps_them(capsys, tmp_path, model_dir) -> None:
    good = noise_image(tmp_path / f"{HOSTILE}\u2028\x85{NOT_UTF8}.png", 0)
    bad = tmp_path / f"bozuk{HOSTILE}.jpg"
    bad.write_bytes(os.urandom(200))
    argv = ["classify", bad, good, "--labels", "kedi", "köpek", "--model", model_dir]
    code, out, err = run(capsys, *argv)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{tmp_path}/kırmızı\\x1b[31m\\r\\n\\u202e\\u2028\\x85\\xff.png"
    assert len(lines) == 3 and all(line.isprintable() for line in lines)
    [warning] = without_backend_note(err).splitlines()
    assert warning.isprintable() and "bozuk" in warning and "\\x1b[31m" in warning
    code, out, _ = run(capsys, *argv, "--json")
    assert [result["image"] for result in json_lines(out)] == [str(good)]


def test_index_and_search_escape_names(capsys, tmp_path, model_dir) -> None:
    folder = tmp_path / "photos"
    names = [f"{HOSTILE}{i}.png" for i in range(2)]
    for seed, name in enumerate(names):
        noise_image(folder / name, seed)
    (folder / f"bozuk{HOSTILE}.jpg").write_bytes(os.urandom(300))
    index = tmp_path / "index"
    code, out, err = run(capsys, "index", folder, "--index", index, "--model", model_dir)
    assert code == 0 and "2 images" in out
    [warning] = without_backend_note(err).splitlines()
    assert warning.isprintable() and "bozuk" in warning and "\\x1b[31m\\r\\n\\u202e" in warning
    code, out, err = run(capsys, "search", "deniz", "--index", index)
    assert code == 0 and without_backend_note(err) == ""
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.isprintable() for line in lines)
    escaped = "kırmızı\\x1b[31m\\r\\n\\u202e"
    assert sorted(line.rsplit("/", 1)[1] for line in lines) == [f"{escaped}{i}.png" for i in (0, 1)]
    code, out, _ = run(capsys, "search", "deniz", "--index", index, "--json")
    assert sorted(hit["path"] for hit in json_lines(out)) == [
        str(folder.resolve() / name) for name in names
    ]


def test_evaluate_escapes_class_names_and_json_keeps_them(capsys, tmp_path, model_dir) -> None:
    classes = [f"kedi{HOSTILE}", "köpek\u2028\x85"]
    for index, name in enumerate(classes):
        noise_image(tmp_path / "data" / name / "0.png", index)
    (tmp_path / "data" / classes[0] / f"{HOSTILE}.jpg").write_bytes(os.urandom(100))
    argv = ["evaluate", "--images", tmp_path / "data", "--model", model_dir]
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert all(line.isprintable() for line in out.splitlines())
    assert "kedikırmızı\\x1b[31m\\r\\n\\u202e" in out and "köpek\\u2028\\x85" in out
    [warning] = without_backend_note(err).splitlines()
    assert warning.isprintable() and "\\x1b[31m" in warning
    code, out, _ = run(capsys, *argv, "--json")
    report = json.loads(out)
    assert sorted(entry["label"] for entry in report["single"]["per_class"]) == sorted(classes)


@pytest.mark.parametrize("wait", ["-1", "soon", "inf"])
def test_index_refuses_a_wait_that_is_not_a_number_of_seconds(capsys, tmp_path, wait) -> None:
    code, _, err = run(capsys, "index", tmp_path, "--index", tmp_path / "i", "--wait", wait)
    assert code == 2 and "--wait" in err and "seconds" in err


# Backends: onnxruntime (--backend onnx) against torch, float32 and int8.


def test_search_ranks_alike_on_both_backends(capsys, tmp_path, photos, tiny_onnx_dir) -> None:
    query = ["search", "sahilde koşan bir köpek", "--top-k", 4, "--json"]
    results = {}
    for backend in ("torch", "onnx"):
        index = tmp_path / f"index-{backend}"
        argv = ["index", photos, "--index", index, "--model", tiny_onnx_dir, "--backend", backend]
        assert run(capsys, *argv)[0] == 0
        for searcher in ("torch", "onnx"):
            code, out, _ = run(capsys, *query, "--index", index, "--backend", searcher)
            assert code == 0
            results[backend, searcher] = json_lines(out)
    reference = results["torch", "torch"]
    for hits in results.values():
        assert [hit["path"] for hit in hits] == [hit["path"] for hit in reference]
        assert [hit["score"] for hit in hits] == pytest.approx(
            [hit["score"] for hit in reference], abs=1e-4
        )


def test_classify_scores_alike_on_both_backends(capsys, tmp_path, tiny_onnx_dir) -> None:
    images = [noise_image(tmp_path / f"{i}.png", i) for i in range(2)]
    argv = ["classify", *images, "--labels", "kedi", "köpek", "deniz", "--json"]
    argv += ["--model", tiny_onnx_dir, "--template", *TEMPLATES]
    outputs = {}
    for backend in ("torch", "onnx"):
        code, out, _ = run(capsys, *argv, "--backend", backend)
        assert code == 0
        outputs[backend] = json_lines(out)
    for torch_result, onnx_result in zip(outputs["torch"], outputs["onnx"]):
        assert [item["label"] for item in onnx_result["labels"]] == [
            item["label"] for item in torch_result["labels"]
        ]
        assert [item["score"] for item in onnx_result["labels"]] == pytest.approx(
            [item["score"] for item in torch_result["labels"]], abs=1e-4
        )


def test_evaluate_reports_alike_on_both_backends(capsys, tmp_path, tiny_onnx_dir) -> None:
    for index, name in enumerate(["kedi", "köpek", "kuş"] * 2):
        noise_image(tmp_path / "data" / name / f"{index}.png", index)
    reports = {}
    for backend in ("torch", "onnx"):
        argv = ["evaluate", "--images", tmp_path / "data", "--model", tiny_onnx_dir, "--json"]
        code, out, _ = run(capsys, *argv, "--backend", backend)
        assert code == 0
        reports[backend] = json.loads(out)
    assert reports["onnx"] == reports["torch"]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_int8_flag_is_honoured_on_each_backend(capsys, tmp_path, tiny_onnx_dir, backend) -> None:
    image = noise_image(tmp_path / "a.png", 0)
    argv = ["classify", image, "--labels", "kedi", "köpek", "--json", "--model", tiny_onnx_dir]
    argv += ["--backend", backend]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    code, out_int8, _ = run(capsys, *argv, "--int8")
    assert code == 0
    fp32 = {item["label"]: item["score"] for item in json_lines(out)[0]["labels"]}
    int8 = {item["label"]: item["score"] for item in json_lines(out_int8)[0]["labels"]}
    assert fp32 != int8  # another computation ran
    assert int8 == pytest.approx(fp32, abs=0.05)


def test_onnx_backend_without_onnx_files_is_a_one_line_error(capsys, tmp_path, model_dir) -> None:
    image = noise_image(tmp_path / "a.png", 0)
    argv = ["classify", image, "--labels", "kedi", "--model", model_dir, "--backend", "onnx"]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and "text_model.onnx not found" in line
    assert "hub_upload.py export-onnx" in line


def test_default_backend_is_onnx_on_a_cpu_where_the_files_are(
    tmp_path, model_dir, tiny_onnx_dir, monkeypatch
) -> None:
    from inference import loading

    assert loading.choose_backend(str(tiny_onnx_dir), None) == "onnx"
    assert loading.choose_backend(str(tiny_onnx_dir), None, int8=True) == "onnx"
    assert loading.choose_backend(str(tiny_onnx_dir), "torch") == "torch"
    assert loading.choose_backend(str(model_dir), None) == "torch"  # no onnx/ folder
    assert loading.choose_backend("someone/turkish-clip", None) == "torch"
    partial = tmp_path / "partial"
    shutil.copytree(tiny_onnx_dir, partial)
    (partial / "onnx" / "vision_model_quantized.onnx").unlink()
    assert loading.choose_backend(str(partial), None, int8=True) == "torch"
    assert loading.choose_backend(str(partial), None) == "onnx"
    model = loading.load_model(str(tiny_onnx_dir), None)
    assert type(model).__name__ == "OnnxTurkishCLIP"
    monkeypatch.setattr(loading, "_device", lambda int8=False: "cuda")
    assert loading.choose_backend(str(tiny_onnx_dir), None) == "torch"
    with pytest.raises(ValueError, match="backend must be one of torch, onnx"):
        loading.choose_backend(str(tiny_onnx_dir), "tensorflow")


def test_duplicates_prints_groups_as_json_lines_and_deletes_nothing(capsys, tmp_path, model_dir):
    from builders import smooth_image

    photos = tmp_path / "photos"
    (photos / "kopya").mkdir(parents=True)
    smooth_image(0).save(photos / "deniz.jpg", quality=95)
    smooth_image(0).resize((160, 120)).save(photos / "kopya/deniz-küçük.png")
    for seed in range(1, 4):
        smooth_image(seed + 10).save(photos / f"farklı{seed}.png")
    index = tmp_path / "index"
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 0
    code, out, err = run(capsys, "duplicates", "--index", index, "--threshold", 0.999, "--json")
    assert code == 0, err
    root = photos.resolve()
    [group] = json_lines(out)
    big, small = (photos / "deniz.jpg").stat().st_size, (photos / "kopya/deniz-küçük.png").stat()
    assert list(group) == ["group", "photos"] and group["group"] == 1
    first, second = group["photos"]
    assert list(first) == ["path", "size", "taken", "score"]
    largest_first = sorted([(big, "deniz.jpg"), (small.st_size, "kopya/deniz-küçük.png")])[::-1]
    assert [p["path"] for p in group["photos"]] == [str(root / name) for _, name in largest_first]
    assert first["score"] == 1.0 and 0.999 <= second["score"] <= 1.0
    assert all(p["taken"] for p in group["photos"])
    code, out, _ = run(capsys, "duplicates", "--index", index, "--threshold", 0.999)
    assert code == 0 and out.splitlines()[0] == "group 1: 2 photos"
    assert out.splitlines()[-1] == "1 groups of near-duplicates at threshold 0.999"
    assert len(list(photos.rglob("*.*"))) == 5  # nothing deleted
    code, _, err = run(capsys, "duplicates", "--index", index, "--threshold", 2)
    # argparse's usage error
    assert code == 2 and "a cosine similarity at least -1 and at most 1, got" in err
    code, _, err = run(capsys, "duplicates", "--index", tmp_path / "yok")
    assert code == 1 and "no index in" in err and "cli.py index FOLDER" in err


def test_search_filters_and_min_score_on_the_command_line(capsys, tmp_path, photos, model_dir):
    index = tmp_path / "index"
    assert run(capsys, "index", photos, "--index", index, "--model", model_dir)[0] == 0
    root = photos.resolve()
    code, out, _ = run(capsys, "search", "kedi", "--index", index, "--folder", "sub", "--json")
    assert code == 0
    assert sorted(h["path"] for h in json_lines(out)) == [
        str(root / "sub/c.png"),
        str(root / "sub/deeper/d.png"),
    ]
    code, out, _ = run(capsys, "search", "kedi", "--index", index, "--type", "PNG", "--json")
    assert len(json_lines(out)) == 4
    everything = json_lines(run(capsys, "search", "kedi", "--index", index, "--json")[1])
    threshold = (everything[1]["score"] + everything[2]["score"]) / 2
    code, out, _ = run(
        capsys, "search", "kedi", "--index", index, "--min-score", threshold, "--json"
    )
    assert [h["path"] for h in json_lines(out)] == [h["path"] for h in everything[:2]]
    for hit in everything:
        assert set(hit) == {"rank", "id", "path", "score", "taken", "camera"}
    code, _, err = run(capsys, "search", "kedi", "--index", index, "--taken-after", "dün")
    assert code == 1 and err.startswith("error: --taken-after must be an ISO date")


# Indexing speed: reduced JPEG decoding by default, --exact-decode, and the image path.


@pytest.fixture
def camera_photos(tmp_path: Path) -> Path:
    """JPEGs large enough for a reduced decode at the tiny model's input (32: a bound of 64)."""
    from builders import photo_like

    folder = tmp_path / "camera"
    folder.mkdir()
    for seed in range(5):
        photo_like(300 + 40 * seed, 200 + 30 * seed, seed).save(folder / f"{seed}.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


def index_rows(index: Path) -> tuple[list[str], np.ndarray]:
    meta = json.loads((index / "meta.json").read_text())
    paths = [entry["path"] for entry in json_lines((index / meta["files"]).read_text())]
    return paths, np.load(index / meta["embeddings"])


def test_exact_decode_reproduces_the_sequential_full_decode_rows_bit_for_bit(
    capsys, tmp_path, camera_photos, model_dir
) -> None:
    from builders import sequential_rows

    from inference.loading import load_model

    argv = ["index", camera_photos, "--model", model_dir, "--batch-size", "2"]
    assert run(capsys, *argv, "--index", tmp_path / "exact", "--exact-decode")[0] == 0
    assert run(capsys, *argv, "--index", tmp_path / "reduced")[0] == 0
    paths, exact = index_rows(tmp_path / "exact")
    assert paths == [f"{seed}.jpg" for seed in range(5)]
    model = load_model(str(model_dir))
    files = sorted(camera_photos.iterdir())  # broken.jpg sorts after the photos
    rows, kept, failures, _, _ = sequential_rows(model, files, 2)
    assert kept == list(range(5)) and list(failures) == [5]
    assert np.array_equal(exact, rows)
    # Without the flag the large JPEGs decode at a reduced scale: other bits, the same images.
    assert index_rows(tmp_path / "reduced")[0] == paths
    reduced = index_rows(tmp_path / "reduced")[1]
    assert not np.array_equal(reduced, exact)
    assert (reduced * exact).sum(-1).min() > 0.99


def test_index_picks_the_fastest_exact_enough_image_path(
    capsys, tmp_path, photos, model_dir, tiny_onnx_dir, monkeypatch
) -> None:
    from inference.embedding_model import backend_name
    from search import engines

    loads = []
    load = engines.LocalEngine.load_model

    def recording_load(engine, spec):
        model = load(engine, spec)
        loads.append(backend_name(model))
        return model

    monkeypatch.setattr(engines.LocalEngine, "load_model", recording_load)
    index = tmp_path / "index"
    for flags, expected in [
        ([], "onnxruntime int8"),  # the folder has verified int8 ONNX files
        (["--backend", "torch"], "torch float32 on cpu"),
        (["--backend", "torch", "--int8"], "torch int8 on cpu"),
        (["--backend", "onnx"], "onnxruntime float32"),
        (["--exact-decode"], "onnxruntime float32"),  # as before the rule: float32, its backend
    ]:
        noise_image(photos / f"new{len(loads)}.png", 100 + len(loads))  # something to embed
        argv = ["index", photos, "--index", index, "--model", tiny_onnx_dir]
        code, out, err = run(capsys, *argv, *flags)
        assert code == 0, err
        assert loads[-1] == expected
    # Each run updated the same index: the paths share its fingerprint.
    assert "1 added" in out
    # Without ONNX files: torch int8, checked against float32 first; float32 with --exact-decode.
    argv = ["index", photos, "--index", tmp_path / "torch", "--model", model_dir]
    assert run(capsys, *argv)[0] == 0 and loads[-1] == "torch int8 on cpu"
    noise_image(photos / "last.png", 99)
    assert run(capsys, *argv, "--exact-decode")[0] == 0 and loads[-1] == "torch float32 on cpu"


def test_each_command_says_once_which_backend_computes(
    capsys, tmp_path, photos, tiny_onnx_dir
) -> None:
    index = tmp_path / "index"
    argv = ["index", photos, "--index", index, "--model", tiny_onnx_dir, "--backend", "onnx"]
    code, _, err = run(capsys, *argv)
    assert code == 0 and err.count("embedding with onnxruntime float32") == 1
    code, _, err = run(capsys, "search", "kedi", "--index", index, "--backend", "torch", "--int8")
    assert code == 0 and err.splitlines()[0].endswith(": torch int8 on cpu")
    code, _, err = run(capsys, "search", "kedi", "--index", index, "--backend", "torch")
    assert code == 0 and [line.split(": ")[-1] for line in err.splitlines()] == [
        "torch float32 on cpu"
    ]
    image = next(photos.rglob("*.png"))
    classify = ["classify", image, "--labels", "kedi", "köpek", "--model", tiny_onnx_dir]
    code, _, err = run(capsys, *classify, "--backend", "onnx", "--int8")
    assert code == 0 and err.splitlines() == [f"model {tiny_onnx_dir}: onnxruntime int8"]
