"""The Ray engine on a local 2-CPU Ray: the same rows, kept files and failures as the local engine,
the same index folder from `cli.py index --engine ray`, and a killed run that resumes without
losing or duplicating a row. Ray starts once for the module: it is slow to start on 2 cores."""

import os
from pathlib import Path

import numpy as np
import pytest
from builders import noise_image, save_tiny_model_folder
from PIL import Image

import cli
from inference.loading import load_model
from search import ray_engine
from search.image_index import load_index
from search.ray_engine import WORK_FOLDER, RayOptions, embed_image_files_ray

BATCH = 3


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray_engine.start_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight noise images in two folders and one file that is not an image."""
    root = tmp_path_factory.mktemp("photos")
    for number in range(8):
        noise_image(root / ("sub" if number % 2 else "") / f"foto{number}.png", number)
    (root / "bozuk.jpg").write_bytes(b"not a jpeg")
    return root


def image_paths(root: Path) -> list[Path]:
    return [root / path for path in sorted(cli.scan_images(root))]


def test_ray_engine_matches_the_local_engine_and_resumes_a_killed_run(
    tmp_path, photos, model_dir
) -> None:
    paths = image_paths(photos)
    local = cli.embed_image_files(load_model(str(model_dir), None), paths, BATCH, True)
    index_folder = tmp_path / "photos.index"
    finished = []

    def killed_after_two_batches(images: int) -> None:
        finished.append(images)
        if len(finished) == 2:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    with pytest.raises(KeyboardInterrupt):
        embed_image_files_ray(
            str(model_dir), paths, BATCH, index_folder, RayOptions(), print,
            killed_after_two_batches,
        )  # fmt: skip
    parts = list((index_folder / WORK_FOLDER).rglob("part-*.npz"))
    assert 2 <= len(parts) <= 3  # the batches reported done are on disk, maybe one more

    messages = []
    result = embed_image_files_ray(
        str(model_dir), paths, BATCH, index_folder, RayOptions(), messages.append
    )
    rows, kept, failures = result.embeddings, result.kept, result.failures
    assert messages[0] == f"resuming: {len(parts)} of 3 batches already embedded"
    assert kept == local.kept and len(kept) == len(set(kept)) == 8
    assert failures == local.failures and list(failures) == [0]  # bozuk.jpg sorts first
    assert "bozuk.jpg" in failures[0] and messages[1] == f"skipped: {failures[0]}"
    assert rows.shape == local.embeddings.shape
    np.testing.assert_allclose(rows, local.embeddings, atol=1e-5)


def test_index_with_ray_writes_the_local_engines_index_and_updates_incrementally(
    capsys, tmp_path, photos, model_dir
) -> None:
    local, ray = tmp_path / "local.index", tmp_path / "ray.index"
    base = ["index", photos, "--model", model_dir, "--batch-size", BATCH, "-q"]
    # Ray's workers embed in float32, as the local engine does on --backend torch.
    assert cli.main([str(arg) for arg in [*base, "--index", local, "--backend", "torch"]]) == 0
    assert cli.main([str(arg) for arg in [*base, "--index", ray, "--engine", "ray"]]) == 0
    out = capsys.readouterr().out
    assert out.count("8 images (8 added, 0 updated, 0 removed, 0 unchanged, 1 unreadable)") == 2
    one, other = load_index(local), load_index(ray)
    assert one.files == other.files
    assert one.meta["unreadable"] == other.meta["unreadable"]
    np.testing.assert_allclose(one.embeddings, other.embeddings, atol=1e-5)
    assert not (ray / WORK_FOLDER).exists()

    extra = photos / "sub" / "yeni.png"
    Image.fromarray(np.full((30, 30, 3), 200, np.uint8)).save(extra)
    try:
        assert cli.main([str(arg) for arg in [*base, "--index", ray, "--engine", "ray"]]) == 0
        model = load_model(str(model_dir), None)
        expected = cli.embed_image_files(model, [extra], BATCH, True).embeddings[0]
    finally:
        extra.unlink()
    assert "9 images (1 added, 0 updated, 0 removed, 8 unchanged, 1 unreadable)" in (
        capsys.readouterr().out
    )
    updated = load_index(ray)
    row = [entry["path"] for entry in updated.files].index("sub/yeni.png")
    np.testing.assert_allclose(updated.embeddings[row], expected, atol=1e-5)
    kept_rows = np.delete(updated.embeddings, row, axis=0)
    np.testing.assert_array_equal(kept_rows, other.embeddings)  # unchanged rows are not redone


def test_more_gpus_per_worker_than_the_cluster_has_is_a_clear_error(
    capsys, tmp_path, photos, model_dir
) -> None:
    argv = ["index", photos, "--index", tmp_path / "gpu.index", "--model", model_dir]
    argv += ["--engine", "ray", "--gpus-per-worker", "1", "-q"]
    assert cli.main([str(arg) for arg in argv]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        "error: each worker asks for 1 GPUs, more than the Ray cluster has (0) "
        "(lower --gpus-per-worker, or leave it out to use what the cluster has)"
    )


def test_reduced_decoding_reaches_the_ray_workers(tmp_path, model_dir) -> None:
    from builders import photo_like

    paths = []
    for seed in range(4):  # large enough for a reduced decode at the tiny model's input
        paths.append(tmp_path / f"{seed}.jpg")
        photo_like(300, 200, seed).save(paths[-1], quality=90)
    model = load_model(str(model_dir), None)
    rows = {}
    for reduced in (False, True):
        local = cli.embed_image_files(model, paths, BATCH, True, reduced)
        remote = embed_image_files_ray(
            str(model_dir),
            paths,
            BATCH,
            tmp_path / "index",
            RayOptions(),
            lambda message: None,
            reduced_decode=reduced,
        )
        assert remote.kept == local.kept == [0, 1, 2, 3]
        np.testing.assert_allclose(remote.embeddings, local.embeddings, atol=1e-5)
        rows[reduced] = remote.embeddings
    assert not np.allclose(rows[False], rows[True], atol=1e-5)  # another decode ran


def test_a_successful_ray_index_prints_nothing_of_rays_own(tmp_path, model_dir) -> None:
    """Only the command's own lines: no Ray warnings, no core-worker log lines."""
    import subprocess
    import sys

    for seed in range(4):
        noise_image(tmp_path / "photos" / f"{seed}.png", seed)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    argv = ["index", str(tmp_path / "photos"), "--index", str(tmp_path / "index")]
    argv += ["--model", str(model_dir), "--engine", "ray", "--backend", "torch"]
    done = subprocess.run(
        [sys.executable, str(Path(cli.__file__)), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'index'}: 4 images (4 added, 0 updated, 0 removed, 0 unchanged, 0 unreadable)"
    ]
    assert done.stderr.splitlines() == ["embedding with torch float32 on cpu"]
