"""`cli.py evaluate --benchmark` on XM3600 and XTD10 folders laid out as their publishers ship
them: recall@k equal to CLIP_benchmark's computation (torch.topk on the model's own embeddings),
missing images counted and skipped, the XTD10 contamination warning for a COCO-trained card
only, and one-line errors for a language the benchmark lacks or a broken line."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import parallel_captions, save_tiny_model_folder
from PIL import Image

import cli
from inference.loading import load_model

IMAGES = 14


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


def jpeg(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)


def turkish(count: int, offset: int = 0) -> list[str]:
    return [tr for _, tr in parallel_captions()[offset : offset + count]]


def xm3600(root: Path, missing: int = 0) -> tuple[Path, list[tuple[str, str]]]:
    """captions.jsonl with 36-language-style entries; (key, first Turkish caption) per image."""
    expected = []
    root.mkdir(parents=True, exist_ok=True)
    with (root / "captions.jsonl").open("w", encoding="utf-8") as file:
        for number, (first, second) in enumerate(zip(turkish(IMAGES), turkish(IMAGES, 50))):
            key = f"{number:016x}"
            record = {
                "image/key": key,
                "image/locale": "tr",
                "en": {"caption": ["an English caption"], "caption/tokenized": ["..."]},
                "tr": {"caption": [first, second], "caption/tokenized": [first, second]},
            }
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            if number >= missing:
                jpeg(root / "images" / f"{key}.jpg", number)
                expected.append((key, first))
    return root, expected


def xtd10(root: Path) -> tuple[Path, list[tuple[str, str]]]:
    names = [f"COCO_train2014_{number:012d}.jpg" for number in range(IMAGES)]
    captions = turkish(IMAGES, 20)
    root.mkdir(parents=True, exist_ok=True)
    (root / "test_image_names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    (root / "test_1kcaptions_tr.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    (root / "test_1kcaptions_de.txt").write_text("\n".join(["x"] * IMAGES), encoding="utf-8")
    for number, name in enumerate(names):
        jpeg(root / "images" / name, 100 + number)
    return root, list(zip(names, captions))


def clip_benchmark_recall(model_dir: Path, images: list[Path], captions: list[str]) -> dict:
    """CLIP_benchmark's definition: texts x images scores, a query found when one of its
    positives is in torch.topk's k; image retrieval = text -> image."""
    model = load_model(str(model_dir))
    with torch.no_grad():
        image_embeds = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        text_embeds = torch.nn.functional.normalize(model.encode_text(captions), dim=-1)
    scores = text_embeds @ image_embeds.T
    positives = torch.eye(len(captions), dtype=torch.bool)
    metrics = {}
    for k in (1, 5, 10):
        for name, matrix, truth in (
            ("image_retrieval", scores, positives),
            ("text_retrieval", scores.T, positives.T),
        ):
            top = torch.topk(matrix, k, dim=1).indices
            found = truth.gather(1, top).any(dim=1).double().mean().item()
            metrics[f"{name}_recall@{k}"] = found
    return metrics


def evaluate(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["evaluate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("benchmark", ["xm3600", "xtd10"])
def test_recall_matches_clip_benchmarks_definition(tmp_path, capsys, model_dir, benchmark):
    build = xm3600 if benchmark == "xm3600" else xtd10
    root, expected = build(tmp_path)
    argv = ["--benchmark", benchmark, "--data", str(root), "--model", str(model_dir), "--json"]
    code, out, err = evaluate(capsys, *argv)
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"dataset", "model", "language", "task", "metrics"}
    assert (result["dataset"], result["language"]) == (benchmark, "tr")
    assert (result["task"], result["model"]) == ("zeroshot_retrieval", str(model_dir))
    suffix = ".jpg" if benchmark == "xm3600" else ""
    images = [root / "images" / f"{name}{suffix}" for name, _ in expected]
    reference = clip_benchmark_recall(model_dir, images, [caption for _, caption in expected])
    assert result["metrics"].keys() == reference.keys()
    for name, value in reference.items():
        assert result["metrics"][name] == pytest.approx(value, abs=1e-9), name
    assert 0 < result["metrics"]["image_retrieval_recall@5"] < 1  # not a trivial case
    assert (
        result["metrics"]["text_retrieval_recall@10"]
        >= result["metrics"]["text_retrieval_recall@5"]
    )
    assert "missing" not in err and "contaminated" not in err


def test_missing_images_are_counted_and_skipped(tmp_path, capsys, model_dir):
    root, expected = xm3600(tmp_path, missing=3)
    argv = ["--benchmark", "xm3600", "--data", str(root), "--model", str(model_dir), "--json"]
    code, out, err = evaluate(capsys, *argv)
    assert code == 0, err
    assert f"3 of {IMAGES} images are missing from {root / 'images'}" in err
    images = [root / "images" / f"{key}.jpg" for key, _ in expected]
    reference = clip_benchmark_recall(model_dir, images, [caption for _, caption in expected])
    assert json.loads(out)["metrics"] == pytest.approx(reference, abs=1e-9)


def card(folder: Path, datasets: list[str] | None) -> None:
    header = "language: tr\n" + (f"datasets: {json.dumps(datasets)}\n" if datasets else "")
    (folder / "README.md").write_text(f"---\n{header}---\n\n# A model\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("datasets", "warned"), [(["coco"], True), (["yerevann/coco-karpathy"], True), (None, False)]
)
def test_xtd10_warns_of_contamination_for_a_coco_trained_card(
    tmp_path, capsys, model_dir, datasets, warned
):
    import shutil

    folder = shutil.copytree(model_dir, tmp_path / "model")
    card(folder, datasets)
    root, _ = xtd10(tmp_path / "xtd10")
    code, out, err = evaluate(capsys, "--benchmark", "xtd10", "--data", str(root), "--model",
                              str(folder))  # fmt: skip
    assert code == 0, err
    assert ("XTD10's images are COCO train2014 images" in err) == warned
    assert "text -> image" in out  # the table, without --json
    # XM3600 is the clean benchmark: no warning there, whatever the card says.
    root, _ = xm3600(tmp_path / "xm3600")
    code, _, err = evaluate(capsys, "--benchmark", "xm3600", "--data", str(root), "--model",
                            str(folder))  # fmt: skip
    assert code == 0 and "contaminated" not in err


def test_a_language_the_benchmark_lacks_is_one_line_naming_the_file(tmp_path, capsys, model_dir):
    root, _ = xtd10(tmp_path / "xtd10")
    argv = ["--benchmark", "xtd10", "--data", str(root), "--model", str(model_dir)]
    code, _, err = evaluate(capsys, *argv, "--language", "fi")
    assert code == 1 and err.count("\n") == 1
    assert f"{root / 'test_1kcaptions_fi.txt'} not found" in err and "languages: de, tr" in err

    root, _ = xm3600(tmp_path / "xm3600")
    argv = ["--benchmark", "xm3600", "--data", str(root), "--model", str(model_dir)]
    code, _, err = evaluate(capsys, *argv, "--language", "fi")
    assert code == 1 and err.count("\n") == 1
    assert f"{root / 'captions.jsonl'}, line 1: no 'fi' captions (languages: en, tr)" in err


def test_a_captions_line_that_is_not_utf8_is_named(tmp_path, capsys, model_dir):
    root, _ = xtd10(tmp_path)
    path = root / "test_1kcaptions_tr.txt"
    lines = path.read_bytes().split(b"\n")
    lines[4] = b"caf\xe9"
    path.write_bytes(b"\n".join(lines))
    argv = ["--benchmark", "xtd10", "--data", str(root), "--model", str(model_dir)]
    code, _, err = evaluate(capsys, *argv)
    assert code == 1 and err.count("\n") == 1
    assert f"{path}, line 5: not valid UTF-8" in err


def test_data_and_language_need_a_benchmark(tmp_path, capsys, model_dir):
    code, _, err = evaluate(capsys, "--images", str(tmp_path), "--language", "tr")
    assert code == 1 and "--data and --language go with --benchmark" in err
    code, _, err = evaluate(capsys, "--benchmark", "xm3600", "--model", str(model_dir))
    assert code == 1 and "needs --data DIR" in err
