"""`dataset.py translate` as a user runs it: a real process killed with SIGKILL part-way and
started again writes the same files as an uninterrupted run; the summary counts every line;
bad input gets one line naming the file (and line)."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import english_captions, save_tiny_bert, save_tiny_marian

import dataset

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = 400  # windows of 64 captions (16 batches of 4): the kill falls after the first


@pytest.fixture(scope="module")
def marian_dir(tmp_path_factory) -> Path:
    return save_tiny_marian(tmp_path_factory.mktemp("marian") / "model")


def command(source: Path, folder: Path, model: Path) -> list[str]:
    return [
        sys.executable, str(ROOT / "dataset.py"), "translate", "--input", str(source),
        "--output", str(folder / "pairs.tsv"), "--model", str(model), "--batch-size", "4",
        "--max-new-tokens", "6", "--eval-output", str(folder / "eval.tsv"),
        "--eval-fraction", "0.1", "--rejects", str(folder / "rejects.tsv"),
    ]  # fmt: skip


def test_a_killed_run_started_again_writes_the_same_files(tmp_path, marian_dir):
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(english_captions(CAPTIONS, seed=8)), encoding="utf-8")
    environment = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")  # tiny models
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    whole.mkdir(), parts.mkdir()
    done = subprocess.run(
        command(source, whole, marian_dir), capture_output=True, text=True, env=environment
    )
    assert done.returncode == 0, done.stderr
    summary = re.match(
        r"(\d+) lines read, (\d+) translated, (\d+) reused, (\d+) rejected", done.stdout
    )
    read, translated, reused, rejected = (int(n) for n in summary.groups())
    assert read == CAPTIONS and translated + reused == CAPTIONS and rejected > 0

    process = subprocess.Popen(
        command(source, parts, marian_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    progress = parts / "pairs.tsv.progress"
    written = 0
    deadline = time.monotonic() + 120
    while written < 64 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        with contextlib.suppress(OSError, ValueError):  # not written yet
            written = json.loads(progress.read_text())["counts"]["read"]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 0 < json.loads(progress.read_text())["counts"]["read"] < CAPTIONS

    again = subprocess.run(
        command(source, parts, marian_dir), capture_output=True, text=True, env=environment
    )
    assert again.returncode == 0, again.stderr
    assert "resumed after" in again.stderr
    for name in ("pairs.tsv", "eval.tsv", "rejects.tsv"):
        assert (parts / name).read_bytes() == (whole / name).read_bytes()
    assert not progress.exists()


def one_line_error(capsys, argv: list[str]) -> str:
    assert dataset.main(argv) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ")
    return error.strip()


def test_bad_input_gets_one_line_naming_file_and_line(tmp_path, capsys, marian_dir):
    output = ["--output", str(tmp_path / "pairs.tsv"), "--model", str(marian_dir)]
    coco = tmp_path / "instances_train2017.json"
    coco.write_text(json.dumps({"images": []}))
    error = one_line_error(capsys, ["translate", "--input", str(coco), *output])
    assert f"{coco}: not a COCO captions file" in error

    text = tmp_path / "captions.txt"
    text.write_bytes(b"a red cat\n\xff\xfe broken\n")
    error = one_line_error(capsys, ["translate", "--input", str(text), *output])
    assert f"{text}, line 2: not valid UTF-8" in error

    bert = save_tiny_bert(tmp_path / "bert")
    text.write_text("a red cat\n", encoding="utf-8")
    argv = ["translate", "--input", str(text), "--output", str(tmp_path / "p.tsv")]
    error = one_line_error(capsys, [*argv, "--model", str(bert)])
    assert f"{bert}: a 'bert' model is not a sequence-to-sequence translator" in error
    assert not (tmp_path / "p.tsv").exists()

    error = one_line_error(capsys, [*argv, "--model", str(marian_dir), "--eval-fraction", "0.1"])
    assert "--eval-output and --eval-fraction go together" in error

    text.write_text("\n  \n", encoding="utf-8")
    error = one_line_error(capsys, [*argv, "--model", str(marian_dir)])
    assert f"{text}: no captions" in error and not (tmp_path / "p.tsv").exists()
