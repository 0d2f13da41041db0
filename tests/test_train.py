"""train.py end to end on tiny random models: learning, the schedule, resuming, the teacher cache,
bad data, a swapped-in BERT, and a 2-process DDP run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import (
    parallel_captions,
    save_tiny_bert,
    save_tiny_model_folder,
    save_tiny_teacher,
    write_tsv,
)
from huggingface_hub import metadata_load
from safetensors.torch import load_file

import train
import training.loop

ROOT = Path(__file__).resolve().parents[1]
TRANSFORMERS4_PYTHON = os.environ.get("TURKISH_CLIP_TRANSFORMERS4_PYTHON")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A student, a teacher, and 150 pairs to train on, 30 of which are evaluated."""
    root = tmp_path_factory.mktemp("training")
    pairs = parallel_captions()
    return {
        "root": root,
        "student": save_tiny_model_folder(root / "student"),
        "teacher": save_tiny_teacher(root / "teacher"),
        "train": write_tsv(root / "train.tsv", pairs),
        "eval": write_tsv(root / "eval.tsv", pairs[:30]),
        "cache": root / "cache",
    }


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread than on contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(setup, output: Path, *extra: str) -> int:
    argv = ["--student", str(setup["student"]), "--teacher", str(setup["teacher"])]
    argv += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    argv += ["--output", str(output), "--cache-dir", str(setup["cache"])]
    return train.main(argv + ["--batch-size", "16", *extra])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def part(state: dict, prefix: str) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_turkish_captions_learn_their_english_teacher_embeddings(setup, tmp_path):
    output = tmp_path / "trained"
    schedule = ["--frozen-epochs", "3", "--epochs", "12", "--learning-rate", "1e-2"]
    assert run(setup, output, *schedule) == 0
    report = json.loads((output / "eval.json").read_text())
    before, after_frozen, after = report["evaluations"]
    assert before["when"] == "before training" and before["recall@1"] <= 0.1  # chance: 1/30
    assert after["recall@1"] >= 0.9 and after["mse"] < before["mse"] / 5
    assert after_frozen["mse"] < before["mse"]
    losses = [row["loss"] for row in report["training_loss"]]
    assert len(losses) == 15 and losses[-1] < losses[0] / 5
    card = (output / "README.md").read_text()
    assert "stage 1, 3 epoch(s)" in card and "`mse`" in card and "teacher" in card.lower()
    assert "local tsv `train.tsv`" in card and f"{after['recall@1']:.1%}" in card


def test_trained_folder_loads_with_auto_classes_pipeline_and_int8(setup, tmp_path):
    from transformers import AutoModel, AutoProcessor, pipeline

    output = tmp_path / "trained"
    assert run(setup, output, "--frozen-epochs", "1", "--epochs", "1") == 0
    model = AutoModel.from_pretrained(output, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(output, trust_remote_code=True)
    inputs = processor(text=["kırmızı kedi", "mavi araba"])
    with torch.no_grad():
        features = model.text_projection(
            model.pooler(model.text_model(**inputs).last_hidden_state, inputs["attention_mask"])
        )
    expected = weights(output)["text_projection.bias"]
    assert features.shape == (2, expected.shape[0])
    int8 = AutoModel.from_pretrained(output, trust_remote_code=True, int8=True)
    cosine = torch.nn.functional.cosine_similarity(
        int8.encode_text(["kırmızı kedi"]), model.encode_text(["kırmızı kedi"])
    )
    assert float(cosine) > 0.99
    classify = pipeline("zero-shot-image-classification", model=str(output), trust_remote_code=True)
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    from PIL import Image

    result = classify(Image.fromarray(image), candidate_labels=["kedi", "köpek"])
    assert sorted(row["label"] for row in result) == ["kedi", "köpek"]


def test_stage_one_trains_only_the_head_and_the_image_side_never_changes(setup, tmp_path):
    student = weights(setup["student"])
    assert run(setup, tmp_path / "frozen", "--frozen-epochs", "1", "--epochs", "0") == 0
    frozen = weights(tmp_path / "frozen")
    assert_same(part(frozen, "text_model."), part(student, "text_model."))
    assert not torch.equal(frozen["text_projection.weight"], student["text_projection.weight"])
    assert run(setup, tmp_path / "both", "--frozen-epochs", "1", "--epochs", "1") == 0
    both = weights(tmp_path / "both")
    for trained in (frozen, both):
        for prefix in ("vision_model.", "visual_projection.", "logit_scale"):
            assert_same(part(trained, prefix), part(student, prefix))
    name = "text_model.transformer.layer.0.attention.q_lin.weight"
    assert not torch.equal(both[name], student[name])


def test_an_interrupted_run_resumed_ends_with_the_same_weights(setup, tmp_path):
    schedule = ["--frozen-epochs", "1", "--epochs", "2", "--checkpoint-steps", "4"]
    assert run(setup, tmp_path / "straight", *schedule) == 0
    # 10 steps an epoch: stop in the middle of stage 2's first epoch, between two checkpoints.
    interrupted = tmp_path / "interrupted"
    assert run(setup, interrupted, *schedule, "--stop-after-steps", "13") == 0
    assert not interrupted.exists()
    assert run(setup, interrupted, *schedule) == 1  # checkpoints exist: --resume is required
    assert run(setup, interrupted, *schedule, "--resume") == 0
    assert_same(weights(interrupted), weights(tmp_path / "straight"))
    straight = json.loads((tmp_path / "straight" / "eval.json").read_text())
    assert json.loads((interrupted / "eval.json").read_text()) == straight


def test_accumulated_half_batches_and_checkpointed_activations_train_alike(setup, tmp_path):
    # 144 pairs: 9 whole batches of 16, so every accumulated step has both of its halves.
    even = dict(setup, train=write_tsv(tmp_path / "even.tsv", parallel_captions()[:144]))
    head = ["--frozen-epochs", "2", "--epochs", "0", "--learning-rate", "1e-2"]
    assert run(even, tmp_path / "whole", *head) == 0
    halves = [*head, "--batch-size", "8", "--gradient-accumulation-steps", "2"]
    assert run(even, tmp_path / "halves", *halves) == 0
    for name, tensor in weights(tmp_path / "whole").items():
        torch.testing.assert_close(weights(tmp_path / "halves")[name], tensor, atol=1e-5, rtol=0)
    both = ["--frozen-epochs", "1", "--epochs", "1"]
    assert run(setup, tmp_path / "plain", *both) == 0
    assert run(setup, tmp_path / "checkpointed", *both, "--gradient-checkpointing") == 0
    for name, tensor in weights(tmp_path / "plain").items():
        torch.testing.assert_close(weights(tmp_path / "checkpointed")[name], tensor)


def test_the_teacher_runs_once_for_the_same_data(setup, tmp_path, monkeypatch):
    calls = []
    real = training.loop.load_teacher
    monkeypatch.setattr(
        training.loop, "load_teacher", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    fresh = dict(setup, cache=tmp_path / "cache")
    schedule = ["--frozen-epochs", "1", "--epochs", "0"]
    assert run(fresh, tmp_path / "first", *schedule) == 0
    assert len(calls) == 1  # one teacher for both data sets
    assert run(fresh, tmp_path / "second", *schedule) == 0
    assert len(calls) == 1
    assert_same(weights(tmp_path / "first"), weights(tmp_path / "second"))
    changed = dict(fresh, eval=write_tsv(tmp_path / "eval.tsv", parallel_captions()[30:60]))
    assert run(changed, tmp_path / "third", *schedule) == 0
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.tsv", "red cat\tkırmızı kedi\nblue car mavi araba\n", "bad.tsv, line 2: expected"),
        ("bad.jsonl", '{"en": "red cat", "tr": "kırmızı kedi"}\n{"en": "x"}\n', "line 2: no field"),
        ("empty.tsv", "\n\n", "empty.tsv: no caption pairs"),
    ],
)
def test_bad_data_is_an_error_naming_the_file_and_line(
    setup, tmp_path, capsys, name, text, message
):
    bad = tmp_path / name
    bad.write_text(text, encoding="utf-8")
    broken = dict(setup, train=bad, cache=tmp_path / "cache")
    assert run(broken, tmp_path / "out", "--epochs", "0") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error
    assert not (tmp_path / "out").exists() and not list((tmp_path / "cache").glob("*/meta.json"))


def test_an_existing_output_folder_is_refused(setup, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert run(setup, tmp_path / "out") == 1
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--teacher", "/no/such/teacher"], "--teacher /no/such/teacher: no such file or folder"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--epochs", "-1"], "--epochs must be 0 or more"),
    ],
)
def test_bad_options_are_refused_before_any_work(setup, tmp_path, capsys, extra, message):
    assert run(setup, tmp_path / "out", *extra) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {message}"


def test_a_bert_text_encoder_replaces_the_text_tower(setup, tmp_path):
    from transformers import AutoModel, pipeline

    bert = save_tiny_bert(tmp_path / "bert")
    output = tmp_path / "bert-clip"
    schedule = ["--frozen-epochs", "1", "--epochs", "1", "--text-encoder", str(bert)]
    assert run(setup, output, *schedule, "--dataset-name", "coco") == 0
    # The card names what the local pairs were made from, for evaluate's contamination warning.
    assert metadata_load(output / "README.md")["datasets"] == ["coco"]
    model = AutoModel.from_pretrained(output, trust_remote_code=True)
    assert model.config.text_config.model_type == "bert"
    assert model.text_projection.in_features == 24  # the BERT's width, not DistilBERT's
    student, trained = weights(setup["student"]), weights(output)
    for prefix in ("vision_model.", "visual_projection.", "logit_scale"):
        assert_same(part(trained, prefix), part(student, prefix))
    assert not any("pooler" in name for name in trained)
    classify = pipeline("zero-shot-image-classification", model=str(output), trust_remote_code=True)
    from PIL import Image

    result = classify(Image.new("RGB", (40, 30), "red"), candidate_labels=["kedi", "köpek"])
    assert abs(sum(row["score"] for row in result) - 1) < 1e-5
    if TRANSFORMERS4_PYTHON:  # the same folder under transformers 4.57
        script = ROOT / "tests" / "load_folder.py"
        done = subprocess.run(
            [TRANSFORMERS4_PYTHON, str(script), str(output)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        old = json.loads(done.stdout.strip().splitlines()[-1])
        texts = model.encode_text(["bir kedi fotoğrafı"]).numpy()
        np.testing.assert_allclose(old["text"][0], texts[0], atol=1e-5)


def test_two_processes_under_torchrun_write_a_folder_that_loads(setup, tmp_path):
    from transformers import AutoModel

    output = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(ROOT / "train.py")]
    command += ["--student", str(setup["student"]), "--teacher", str(setup["teacher"])]
    command += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    command += ["--output", str(output), "--cache-dir", str(tmp_path / "cache")]
    command += ["--frozen-epochs", "1", "--epochs", "2", "--batch-size", "16"]
    command += ["--learning-rate", "1e-2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((output / "eval.json").read_text())
    losses = [row["loss"] for row in report["training_loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert report["evaluations"][-1]["mse"] < report["evaluations"][0]["mse"]
    model = AutoModel.from_pretrained(output, trust_remote_code=True)
    trained = weights(output)
    assert_same(part(trained, "vision_model."), part(weights(setup["student"]), "vision_model."))
    assert model.encode_text(["kırmızı kedi"]).shape == (1, 16)
    shutil.rmtree(tmp_path / "cache")
