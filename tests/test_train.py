"""train.py end to end on tiny random models: learning, the schedule, resuming, the teacher cache,
bad data, a swapped-in BERT, and a 2-process DDP run."""

import json
import os
import re
import shutil
import signal
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
from safetensors.torch import load_file, save_file

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


pytestmark = pytest.mark.usefixtures("one_thread")


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


def torchrun(setup, output: Path, cache: Path, script: Path = ROOT / "train.py", **env):
    """train.py (or `script`) on 2 processes: 5 steps an epoch, 15 in all."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script)]
    command += ["--student", str(setup["student"]), "--teacher", str(setup["teacher"])]
    command += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    command += ["--output", str(output), "--cache-dir", str(cache)]
    command += ["--frozen-epochs", "1", "--epochs", "2", "--batch-size", "16"]
    command += ["--learning-rate", "1e-2", "--checkpoint-steps", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **env)
    extra = ["--resume"] if output.with_name(output.name + ".checkpoints").exists() else []
    return subprocess.run(command + extra, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def ddp_run(setup, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    done = torchrun(setup, root / "ddp", root / "cache")
    assert done.returncode == 0, done.stderr[-4000:]
    return root / "ddp"


def test_two_processes_under_torchrun_write_a_folder_that_loads(setup, ddp_run):
    from transformers import AutoModel

    output = ddp_run
    report = json.loads((output / "eval.json").read_text())
    losses = [row["loss"] for row in report["training_loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert report["evaluations"][-1]["mse"] < report["evaluations"][0]["mse"]
    model = AutoModel.from_pretrained(output, trust_remote_code=True)
    trained = weights(output)
    assert_same(part(trained, "vision_model."), part(weights(setup["student"]), "vision_model."))
    assert model.encode_text(["kırmızı kedi"]).shape == (1, 16)


def test_a_torchrun_killed_during_a_save_resumes_from_the_last_whole_checkpoint(
    setup, tmp_path, ddp_run
):
    output, cache = tmp_path / "killed", ddp_run.parent / "cache"
    script = ROOT / "tests" / "killed_during_save.py"
    done = torchrun(setup, output, cache, script, KILL_AT_SAVE="2")  # in the save of step 4
    assert done.returncode != 0
    assert [name for name in checkpoint_names(output) if not name.startswith(".")] == [
        "step-00000002"
    ]
    done = torchrun(setup, output, cache)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "resumed from" in done.stdout and "step-00000002 (step 2)" in done.stdout
    assert_same(weights(output), weights(ddp_run))


# --------------------------------------------------------------------------------------------
# hostile options, broken teachers, diverging runs: refused by name, no model written
# --------------------------------------------------------------------------------------------

FLOAT_OPTIONS = [a.option_strings[0] for a in train.parser()._actions if a.type is float]


def written_nothing(output: Path) -> bool:
    checkpoints = output.with_name(output.name + ".checkpoints")
    return not output.exists() and not checkpoints.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
@pytest.mark.parametrize("option", FLOAT_OPTIONS)
def test_every_float_option_refuses_non_finite_and_negative_values(
    setup, tmp_path, capsys, option, value
):
    assert {"--learning-rate", "--encoder-learning-rate", "--weight-decay"} <= set(FLOAT_OPTIONS)
    assert run(setup, tmp_path / "out", f"{option}={value}") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"error: {option} must be")
    assert written_nothing(tmp_path / "out")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stop-after-steps", "0"], "--stop-after-steps must be at least 1"),
        (["--stop-after-steps", "-1"], "--stop-after-steps must be at least 1"),
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--seed", str(2**32)], "--seed must be at most 4294967295"),
        (["--eval-batch-size", "0"], "--eval-batch-size must be at least 1"),
        (["--frozen-epochs", "-2"], "--frozen-epochs must be 0 or more"),
    ],
)
def test_bad_integer_options_are_refused_by_name(setup, tmp_path, capsys, extra, message):
    assert run(setup, tmp_path / "out", *extra) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {message}"
    assert written_nothing(tmp_path / "out")


def nan_teacher(setup, folder: Path) -> Path:
    """The fixture teacher with one NaN in its text projection."""
    shutil.copytree(setup["teacher"], folder)
    state = load_file(folder / "model.safetensors")
    state["text_projection.weight"][0, 0] = float("nan")
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_a_teacher_with_a_nan_weight_is_refused_before_training(setup, tmp_path, capsys):
    broken = dict(setup, teacher=nan_teacher(setup, tmp_path / "teacher"), cache=tmp_path / "c")
    assert run(broken, tmp_path / "out", "--epochs", "0") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"error: --teacher {tmp_path / 'teacher'}: its embeddings are not")
    assert "caption 1 of" in error and "train.tsv" in error
    assert written_nothing(tmp_path / "out")
    assert not list((tmp_path / "c").iterdir())  # no cache of NaN targets is kept


def test_a_cache_holding_nan_targets_is_refused_when_read(setup, tmp_path, capsys):
    fresh = dict(setup, cache=tmp_path / "cache")
    assert run(fresh, tmp_path / "first", "--frozen-epochs", "1", "--epochs", "0") == 0
    for targets in (tmp_path / "cache").glob("*/targets.f32"):
        rows = np.memmap(targets, np.float32, "r+")
        rows[20] = np.nan  # caption 2 of 16-wide rows
        rows.flush()
    assert run(fresh, tmp_path / "second", "--frozen-epochs", "1", "--epochs", "0") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the cached teacher targets in" in error and "from caption 2 of" in error
    assert written_nothing(tmp_path / "second")


def test_a_loss_that_stops_being_finite_stops_the_run_at_its_step(setup, tmp_path, capsys):
    # Finite options, but a rate that throws the weights to 1e30 in one step: the next loss
    # overflows. Nothing may be written, least of all an eval.json claiming any recall.
    output = tmp_path / "out"
    assert run(setup, output, "--frozen-epochs", "2", "--learning-rate", "1e30") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: the training loss is (nan|inf) at step 2 \(stage 1 \(encoder frozen\), "
        r"epoch 1/2, batch 2\); stopped without writing a model: lower --learning-rate, .*",
        error,
    )
    assert not output.exists()
    assert not list((tmp_path / "out.checkpoints").glob("step-*"))


def test_eval_json_is_strict_json_and_the_weights_finite(setup, tmp_path):
    output = tmp_path / "out"
    assert run(setup, output, "--frozen-epochs", "1", "--epochs", "0") == 0

    def refuse(constant):
        raise AssertionError(f"eval.json holds {constant}")

    json.loads((output / "eval.json").read_text(), parse_constant=refuse)
    assert all(torch.isfinite(tensor).all() for tensor in weights(output).values())


# --------------------------------------------------------------------------------------------
# --stop-after-steps and --resume
# --------------------------------------------------------------------------------------------

SCHEDULE = ["--frozen-epochs", "1", "--epochs", "2", "--checkpoint-steps", "4"]


@pytest.fixture(scope="module")
def straight(setup, tmp_path_factory) -> Path:
    """SCHEDULE run through without interruption: what every resumed run must end as."""
    output = tmp_path_factory.mktemp("straight") / "model"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `one_thread` sets it for the runs it is compared with
    try:
        assert run(setup, output, *SCHEDULE) == 0
    finally:
        torch.set_num_threads(threads)
    return output


def checkpoint_names(output: Path) -> list[str]:
    return sorted(path.name for path in output.with_name(output.name + ".checkpoints").iterdir())


def test_stop_after_steps_checkpoints_the_step_it_stops_at(setup, tmp_path, capsys):
    output = tmp_path / "out"
    assert run(setup, output, *SCHEDULE, "--stop-after-steps", "1") == 0
    assert capsys.readouterr().out.strip().endswith("stopped after 1 steps; continue with --resume")
    assert checkpoint_names(output) == ["step-00000001"]
    # A resumption told to stop where the checkpoint already is would stop one step later.
    assert run(setup, output, *SCHEDULE, "--stop-after-steps", "1", "--resume") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --stop-after-steps 1: ") and "at step 1 already" in error


def test_a_kill_during_a_checkpoint_save_leaves_nothing_that_resume_picks(
    setup, tmp_path, straight
):
    output = tmp_path / "killed"
    argv = ["--student", str(setup["student"]), "--teacher", str(setup["teacher"])]
    argv += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    argv += ["--output", str(output), "--cache-dir", str(setup["cache"]), "--batch-size", "16"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), KILL_AT_SAVE="2")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "killed_during_save.py"), *argv, *SCHEDULE],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    # The second save (step 8) was cut short: only the first is a checkpoint.
    assert [name for name in checkpoint_names(output) if not name.startswith(".")] == [
        "step-00000004"
    ]
    assert run(setup, output, *SCHEDULE, "--resume") == 0
    assert_same(weights(output), weights(straight))
    assert checkpoint_names(output) == ["step-00000028", "step-00000030"]  # no leftover


def stopped_run(setup, output: Path, steps: int = 13) -> Path:
    """SCHEDULE stopped after `steps` steps; returns its checkpoint folder."""
    assert run(setup, output, *SCHEDULE, "--stop-after-steps", str(steps)) == 0
    return output.with_name(output.name + ".checkpoints")


def test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before(
    setup, tmp_path, capsys, straight
):
    output = tmp_path / "out"
    checkpoints = stopped_run(setup, output)
    assert checkpoint_names(output) == ["step-00000012", "step-00000013"]
    optimizer = checkpoints / "step-00000013" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # as a half-written save of old
    capsys.readouterr()
    assert run(setup, output, *SCHEDULE, "--resume") == 0
    err = capsys.readouterr().err
    assert f"warning: checkpoint {checkpoints / 'step-00000013'} cannot be read" in err
    assert_same(weights(output), weights(straight))


def test_no_readable_checkpoint_is_an_error_naming_the_folder(setup, tmp_path, capsys):
    output = tmp_path / "out"
    checkpoints = stopped_run(setup, output)
    for optimizer in checkpoints.glob("step-*/optimizer.bin"):
        optimizer.write_bytes(b"")
    capsys.readouterr()
    assert run(setup, output, *SCHEDULE, "--resume") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"error: --resume: no checkpoint in {checkpoints} can be read: ")
    assert "step-00000013 (" in error and "step-00000012 (" in error
    assert not output.exists()


def test_a_checkpoint_replaced_halfway_is_still_found(setup, tmp_path, straight):
    # A kill between the two renames of a rewritten checkpoint leaves the older copy aside.
    output = tmp_path / "out"
    checkpoints = stopped_run(setup, output)
    (checkpoints / "step-00000013").rename(checkpoints / ".step-00000013.replaced")
    assert run(setup, output, *SCHEDULE, "--resume") == 0
    assert_same(weights(output), weights(straight))


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--learning-rate", "1e-2"], "--learning-rate 0.0001 then, 0.01 now"),
        (["--encoder-learning-rate", "1e-3"], "--encoder-learning-rate 0.0001 then, 0.001 now"),
        (["--weight-decay", "0.1"], "--weight-decay 0.0 then, 0.1 now"),
    ],
)
def test_resuming_with_other_optimizer_settings_is_refused_by_name(
    setup, tmp_path, capsys, extra, named
):
    output = tmp_path / "out"
    stopped_run(setup, output, steps=3)
    assert run(setup, output, *SCHEDULE, *extra, "--resume") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --resume: ") and named in error
    assert not output.exists()


def test_resuming_on_training_data_changed_under_its_name_is_refused(setup, tmp_path, capsys):
    data = write_tsv(tmp_path / "pairs.tsv", parallel_captions())
    mine = dict(setup, train=data)
    output = tmp_path / "out"
    stopped_run(mine, output, steps=3)
    write_tsv(data, parallel_captions()[::-1])  # same name, same lines, another order
    assert run(mine, output, *SCHEDULE, "--resume") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --resume: ") and "the content of --train differs" in error
    assert not output.exists()


def test_resuming_on_the_same_data_moved_elsewhere_is_accepted(setup, tmp_path, straight):
    output = tmp_path / "out"
    stopped_run(setup, output)
    moved = dict(setup, train=shutil.copy(setup["train"], tmp_path / "moved.tsv"))
    assert run(moved, output, *SCHEDULE, "--resume") == 0
    assert_same(weights(output), weights(straight))


# --------------------------------------------------------------------------------------------
# what train.py prints
# --------------------------------------------------------------------------------------------


def test_the_evaluation_table_is_printed_once(setup, tmp_path, capsys):
    assert run(setup, tmp_path / "out", "--frozen-epochs", "1", "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert out.count("recall@10") == 1  # one header
    for when in ("before training", "after stage 1 (", "after stage 2 ("):
        assert out.count(when) == 1, out
    # A resumed run shows the rows so far, then the new ones: again one table.
    stopped = tmp_path / "stopped"
    assert run(setup, stopped, *SCHEDULE, "--stop-after-steps", "13") == 0
    capsys.readouterr()
    assert run(setup, stopped, *SCHEDULE, "--resume") == 0
    out = capsys.readouterr().out
    assert out.count("recall@10") == 1 and out.count("before training") == 1
    assert out.count("after stage 1 (") == 1 and out.count("after stage 2 (") == 1


def test_no_progress_bars_when_stderr_is_not_a_terminal(setup, tmp_path):
    command = [sys.executable, str(ROOT / "train.py")]
    command += ["--student", str(setup["student"]), "--teacher", str(setup["teacher"])]
    command += ["--train", str(setup["train"]), "--eval", str(setup["eval"])]
    command += ["--output", str(tmp_path / "out"), "--cache-dir", str(setup["cache"])]
    command += ["--frozen-epochs", "1", "--epochs", "1", "--batch-size", "16"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "it/s" not in done.stderr and "s/it" not in done.stderr and "\r" not in done.stderr
    assert "epoch 1/1" not in done.stderr
    assert done.stdout.count("recall@10") == 1 and f"wrote {tmp_path / 'out'}" in done.stdout


def test_help_shows_every_options_default(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    blocks = re.split(r"\n(?=  -)", text.split("\n\n", 2)[2])
    options = [block for block in blocks if block.startswith("  --")]
    assert len(options) == len([a for a in train.parser()._actions if a.dest != "help"])
    for block in options:
        assert re.search(r"\((default: .+|required)\)", " ".join(block.split())), block
    flat = " ".join(text.split())
    for shown in ("--batch-size BATCH_SIZE per process (default: 32)", "(default: mse)"):
        assert shown in flat
    assert "--seed SEED data order, dropout, heads (default: 0)" in flat


def test_resuming_with_a_teacher_changed_in_place_is_refused(setup, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    shutil.copytree(setup["teacher"], teacher)
    mine = dict(setup, teacher=teacher, cache=tmp_path / "cache")
    output = tmp_path / "out"
    stopped_run(mine, output, steps=3)
    other = save_tiny_teacher(tmp_path / "other", seed=1)
    shutil.copyfile(other / "model.safetensors", teacher / "model.safetensors")
    assert run(mine, output, *SCHEDULE, "--resume") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --resume: ") and "the content of --teacher differs" in error
