"""`dataset.py translate --engine ray` on a local 2-CPU Ray: the same files as the local
engine, from actors that each load the tiny Marian model once."""

import os
from pathlib import Path

import pytest
from builders import english_captions, save_tiny_marian

import dataset
from parallel import ray_pool
from translation.errors import TranslationError
from translation.ray_engine import RayEngine
from translation.translator import TranslatorSettings


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray_pool.start_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_the_ray_engine_writes_what_the_local_engine_writes(tmp_path):
    model = save_tiny_marian(tmp_path / "marian")
    source = tmp_path / "captions.txt"
    captions = english_captions(60, seed=9)
    source.write_text("\n".join(captions + captions[:10]), encoding="utf-8")
    outputs = {}
    for engine in ("local", "ray"):
        folder = tmp_path / engine
        argv = ["translate", "--input", str(source), "--output", str(folder / "pairs.tsv")]
        argv += ["--model", str(model), "--batch-size", "4", "--max-new-tokens", "6"]
        argv += ["--eval-output", str(folder / "eval.tsv"), "--eval-fraction", "0.2"]
        assert dataset.main([*argv, "--engine", engine, "-q"]) == 0
        outputs[engine] = [(folder / name).read_bytes() for name in ("pairs.tsv", "eval.tsv")]
        outputs[engine].append((folder / "pairs.rejects.tsv").read_bytes())
    assert outputs["ray"] == outputs["local"]
    assert outputs["local"][0].count(b"\n") > 0


def test_a_bad_language_is_refused_before_any_worker_starts(tmp_path):
    model = save_tiny_marian(tmp_path / "marian")
    with pytest.raises(TranslationError, match="takes no --source-lang/--target-lang"):
        RayEngine(TranslatorSettings(str(Path(model)), target_lang="tur_Latn"))


def test_more_gpus_than_the_cluster_has_are_refused_in_the_commands_words(tmp_path, capsys):
    model = save_tiny_marian(tmp_path / "marian")
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(english_captions(4, seed=3)), encoding="utf-8")
    argv = ["translate", "--input", str(source), "--output", str(tmp_path / "pairs.tsv")]
    argv += ["--model", str(model), "--engine", "ray", "--gpus-per-worker", "2", "-q"]
    assert dataset.main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        "error: each worker asks for 2 GPUs, more than the Ray cluster has (0) "
        "(lower --gpus-per-worker)"
    )
    # Checked when the pool starts, after the outputs were opened: they hold nothing, and the
    # progress record lets the same command with another --gpus-per-worker start from the top.
    assert (tmp_path / "pairs.tsv").read_bytes() == b""
