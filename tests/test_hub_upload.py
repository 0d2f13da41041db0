"""Tests for hub_upload.py: `convert` end to end on fixtures made with the original libraries
(TensorFlow DistilBERT, Keras head, OpenAI-format CLIP archive), its refusals, and `push` against
a stand-in HfApi. Nothing here touches the network: downloads and uploads are replaced at the
boundary (snapshot_download, urlopen, clip.load, HfApi)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.repocard import metadata_load
from PIL import Image

import hub_upload
from conversion import checkpoints, verification
from conversion.verification import REFUSED_SUFFIXES
from turkish_clip import DEFAULT_TEMPLATE

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_SECRETtoken123"
LAMBDA_MARKER_ENV = "TURKISH_CLIP_LAMBDA_MARKER"

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit:FutureWarning",
    "ignore:pkg_resources:UserWarning",
    "ignore:pkg_resources:DeprecationWarning",
)


def _convert_args(fixtures_dir: Path, archive: Path, output: Path, *extra: str) -> list[str]:
    return [
        "convert",
        "--output",
        str(output),
        "--text-model",
        str(fixtures_dir / "tf_distilbert"),
        "--head",
        str(fixtures_dir / "head_tiny.h5"),
        "--clip",
        str(archive),
        *extra,
    ]


def _run(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with stdout and stderr captured (usable from module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = hub_upload.main(argv)
    return code, out.getvalue(), err.getvalue()


def _load_clip(path: Path):
    import clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model, preprocess = clip.load(str(path), device="cpu", jit=False)
    return model.float().eval(), preprocess


@pytest.fixture(scope="module")
def converted(tmp_path_factory, fixtures_dir, tiny_clip_archive) -> SimpleNamespace:
    """One real conversion of the fixtures, shared by the read-only tests."""
    folder = tmp_path_factory.mktemp("converted") / "turkish-clip"
    code, out, err = _run(_convert_args(fixtures_dir, tiny_clip_archive.path, folder))
    assert code == 0, err
    return SimpleNamespace(folder=folder, stdout=out)


@pytest.fixture(scope="module")
def loaded(converted):
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(converted.folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(converted.folder, trust_remote_code=True)
    return model.eval(), processor


# --------------------------------------------------------------------------------------------
# convert: the result
# --------------------------------------------------------------------------------------------


def test_convert_prints_every_figure(converted):
    lines = converted.stdout.splitlines()
    for name in (
        "image embeddings",
        "head vs h5",
        "text tower tensors",
        "tokenizer",
        "logit_scale vs",
    ):
        (line,) = [line for line in lines if name in line]
        assert line.rstrip().endswith("ok")
    assert "exp(logit_scale) = 50.0000" in converted.stdout
    assert f"wrote {converted.folder}" in converted.stdout


def test_converted_text_reproduces_tensorflow_encode_text(loaded, fixtures_dir):
    model, processor = loaded
    expected = json.loads((fixtures_dir / "text_expected.json").read_text(encoding="utf-8"))
    assert processor.tokenize(expected["texts"]) == expected["input_ids"]
    projected = model.encode_text(expected["texts"], normalize=False, processor=processor)
    torch.testing.assert_close(projected, torch.tensor(expected["projected"]), rtol=0, atol=1e-5)
    normalized = model.encode_text(expected["texts"], processor=processor)
    torch.testing.assert_close(normalized, torch.tensor(expected["normalized"]), rtol=0, atol=1e-5)


def test_converted_images_match_clip_encode_image(loaded, tiny_clip_archive):
    model, processor = loaded
    rng = np.random.default_rng(5)
    images = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        for w, h in ((50, 33), (33, 50), (64, 64))
    ]
    clip_model, preprocess = _load_clip(tiny_clip_archive.path)
    with torch.no_grad():
        expected = clip_model.encode_image(torch.stack([preprocess(im) for im in images]))
    found = model.encode_image(images, normalize=False, processor=processor)
    torch.testing.assert_close(found, expected, rtol=0, atol=1e-5)
    assert model.logit_scale.item() == pytest.approx(tiny_clip_archive.logit_scale, abs=1e-6)
    assert model.logit_scale.item() == clip_model.logit_scale.item()


def test_converted_folder_is_safetensors_only_with_auto_map(converted):
    names = {p.relative_to(converted.folder).as_posix() for p in converted.folder.rglob("*")}
    assert "model.safetensors" in names
    assert not [n for n in names if n.endswith(REFUSED_SUFFIXES)]
    assert not [n for n in names if n.startswith(".")]
    config = json.loads((converted.folder / "config.json").read_text())
    assert set(config["auto_map"]) >= {
        "AutoConfig",
        "AutoModel",
        "AutoModelForZeroShotImageClassification",
        "AutoProcessor",
    }
    assert "zero-shot-image-classification" in config["custom_pipelines"]
    # Nothing beside it: no staging folder, no replaced-folder leftovers.
    assert [p.name for p in converted.folder.parent.iterdir()] == [converted.folder.name]


def test_model_card_metadata_usage_and_figures(converted, tiny_clip_archive):
    card = (converted.folder / "README.md").read_text(encoding="utf-8")
    meta = metadata_load(converted.folder / "README.md")
    assert meta["pipeline_tag"] == "zero-shot-image-classification"
    assert meta["library_name"] == "transformers"
    assert meta["language"] == "tr"
    assert meta["license"] == "other"
    assert meta["base_model"] == [
        "mys/distilbert-base-turkish-cased-clip",
        "openai/clip-vit-base-patch32",
    ]
    assert {"clip", "turkish", "zero-shot-image-classification"} <= set(meta["tags"])
    assert meta["datasets"] == ["coco"]  # the original's training data, read by evaluate
    for text in ('revision = "<commit sha>"', "trust_remote_code=True", "use_safetensors=True"):
        assert text in card
    assert DEFAULT_TEMPLATE in card
    assert "| head vs h5 x @ kernel + bias (8 inputs) |" in card
    assert "(32, 16), transposed" in card  # the head's real shape, not a hard-coded one
    # Local paths are named by their last part only: no machine's folder layout is published.
    assert str(tiny_clip_archive.path.parent) not in card
    assert "local copy `tiny-vit.pt`" in card


def test_pipeline_from_converted_folder(converted):
    from transformers import pipeline

    classifier = pipeline(
        "zero-shot-image-classification",
        model=str(converted.folder),
        trust_remote_code=True,
        model_kwargs={"use_safetensors": True},  # as the card's snippet passes it
    )
    image = Image.fromarray(np.full((40, 30, 3), 120, np.uint8), "RGB")
    result = classifier(image, candidate_labels=["kedi", "köpek", "araba"])
    assert sorted(r["label"] for r in result) == ["araba", "kedi", "köpek"]
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------------------------
# convert: refusals and atomicity
# --------------------------------------------------------------------------------------------


def _swap(state: dict, a: str, b: str) -> None:
    state[a], state[b] = state[b], state[a]


CORRUPTIONS = {
    "text layernorm weight/bias swapped": (
        lambda s: _swap(
            s, "text_model.embeddings.LayerNorm.weight", "text_model.embeddings.LayerNorm.bias"
        ),
        "text tower tensors",
    ),
    "text kernel transposed": (
        lambda s: s.__setitem__(
            "text_model.transformer.layer.0.attention.q_lin.weight",
            s["text_model.transformer.layer.0.attention.q_lin.weight"].T.contiguous(),
        ),
        "text tower tensors",
    ),
    "vision layernorm weight/bias swapped": (
        lambda s: _swap(
            s,
            "vision_model.encoder.layers.1.layer_norm1.weight",
            "vision_model.encoder.layers.1.layer_norm1.bias",
        ),
        "image embeddings",
    ),
    "head bias shifted": (
        lambda s: s.__setitem__("text_projection.bias", s["text_projection.bias"] + 1e-3),
        "head vs h5",
    ),
}


def _corrupt_assembly(monkeypatch, corruption) -> None:
    original = checkpoints.assemble_state_dict

    def corrupted(*args):
        state = original(*args)
        corruption(state)
        return state

    monkeypatch.setattr(checkpoints, "assemble_state_dict", corrupted)


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_verification_catches_a_wrong_conversion(
    kind, monkeypatch, tmp_path, fixtures_dir, tiny_clip_archive
):
    corruption, failing_check = CORRUPTIONS[kind]
    _corrupt_assembly(monkeypatch, corruption)
    output = tmp_path / "out"
    code, out, err = _run(_convert_args(fixtures_dir, tiny_clip_archive.path, output))
    assert code == 1
    (line,) = [line for line in out.splitlines() if failing_check in line]
    assert "FAILED" in line
    assert err.startswith("error: verification failed: ") and failing_check in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # neither the output nor a staging folder


def test_interrupted_convert_leaves_nothing(monkeypatch, tmp_path, fixtures_dir, tiny_clip_archive):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(verification, "verify", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(_convert_args(fixtures_dir, tiny_clip_archive.path, tmp_path / "out"))
    assert list(tmp_path.iterdir()) == []


def test_convert_sweeps_staging_folders_of_killed_runs(tmp_path, fixtures_dir, tiny_clip_archive):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that has ended: its staging folder is a leftover
    leftovers = [tmp_path / f".out.staging-{gone.pid}-a1b2", tmp_path / ".out.staging-k3_a9z0q"]
    running = tmp_path / f".out.staging-{os.getpid()}-c3d4"  # a live process's: kept
    for folder in (*leftovers, running):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    code, _, err = _run(_convert_args(fixtures_dir, tiny_clip_archive.path, tmp_path / "out"))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", running.name])


def _old_model_folder(path: Path) -> Path:
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "old.txt").write_text("old")
    return path


def test_existing_output_is_refused_without_force(tmp_path, fixtures_dir, tiny_clip_archive):
    output = _old_model_folder(tmp_path / "out")
    code, _, err = _run(_convert_args(fixtures_dir, tiny_clip_archive.path, output))
    assert code == 1
    assert str(output) in err and "--force" in err
    assert (output / "old.txt").read_text() == "old"


def test_force_replaces_only_after_verification(
    monkeypatch, tmp_path, fixtures_dir, tiny_clip_archive
):
    output = _old_model_folder(tmp_path / "out")
    args = _convert_args(fixtures_dir, tiny_clip_archive.path, output, "--force")
    with monkeypatch.context() as patch:
        _corrupt_assembly(patch, CORRUPTIONS["head bias shifted"][0])
        assert _run(args)[0] == 1
    assert sorted(p.name for p in output.iterdir()) == ["config.json", "old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    code, _, err = _run(args)
    assert code == 0, err
    assert not (output / "old.txt").exists()
    assert (output / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_force_refuses_a_folder_that_is_not_a_model_folder(
    tmp_path, fixtures_dir, tiny_clip_archive
):
    output = tmp_path / "notes"
    output.mkdir()
    (output / "keep.txt").write_text("keep")
    argv = _convert_args(fixtures_dir, tiny_clip_archive.path, output, "--force")
    code, _, err = _run(argv)
    assert code == 1
    assert "does not look like a model folder" in err and str(output) in err
    assert (output / "keep.txt").read_text() == "keep"


def test_lambda_head_is_refused_without_running_it(
    monkeypatch, tmp_path, fixtures_dir, tiny_clip_archive
):
    marker = tmp_path / "marker"
    monkeypatch.setenv(LAMBDA_MARKER_ENV, str(marker))
    output = tmp_path / "out"
    argv = _convert_args(fixtures_dir, tiny_clip_archive.path, output)
    argv[argv.index("--head") + 1] = str(fixtures_dir / "head_lambda.h5")
    code, _, err = _run(argv)
    assert code == 1
    assert "Lambda 'lambda'" in err and "head_lambda.h5" in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert not output.exists()


def test_defaults_fetch_hub_text_github_head_and_clip_name(
    monkeypatch, tmp_path, fixtures_dir, tiny_clip_archive
):
    import clip

    snapshot = tmp_path / "hub" / "snapshots" / "0123abcd"
    shutil.copytree(fixtures_dir / "tf_distilbert", snapshot)
    head_bytes = (fixtures_dir / "head_tiny.h5").read_bytes()
    calls = {"hub": [], "url": [], "clip": []}
    real_clip_load = clip.load

    def fake_snapshot_download(repo_id, **kwargs):
        calls["hub"].append(repo_id)
        return str(snapshot)

    def fake_urlopen(url, timeout=None):
        calls["url"].append(url)
        response = io.BytesIO(head_bytes)
        response.headers = {"Content-Length": str(len(head_bytes))}
        return response

    def fake_clip_load(name, **kwargs):
        calls["clip"].append(name)
        return real_clip_load(str(tiny_clip_archive.path), **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(clip, "load", fake_clip_load)
    output = tmp_path / "out"
    code, _, err = _run(["convert", "--output", str(output)])
    assert code == 0, err
    assert calls["hub"] == ["mys/distilbert-base-turkish-cased-clip"]  # once: weights+tokenizer
    assert calls["url"] == ["https://github.com/monatis/turkish-clip/raw/main/clip_head.h5"]
    assert set(calls["clip"]) == {"ViT-B/32"}
    card = (output / "README.md").read_text(encoding="utf-8")
    assert "`mys/distilbert-base-turkish-cased-clip` (commit `0123abcd`)" in card
    assert "`https://github.com/monatis/turkish-clip/raw/main/clip_head.h5`" in card


def test_usage_errors_exit_2():
    for argv in (["convert"], ["push", "x", "--repo-id", "no-slash"], ["push", "x"], []):
        with pytest.raises(SystemExit) as error, contextlib.redirect_stderr(io.StringIO()):
            hub_upload.main(argv)
        assert error.value.code == 2


# --------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------


@pytest.fixture
def folder_copy(converted, tmp_path) -> Path:
    return shutil.copytree(converted.folder, tmp_path / "model")


def test_dry_run_lists_files_without_token_or_api(monkeypatch, converted, capsys):
    def forbidden(*args, **kwargs):
        raise AssertionError("dry run must not look for a token or create an HfApi")

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", forbidden)
    monkeypatch.setattr(huggingface_hub, "HfApi", forbidden)
    code = hub_upload.main(["push", str(converted.folder), "--repo-id", "me/tr-clip", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    size = (converted.folder / "model.safetensors").stat().st_size
    assert f"{size:>12,}  model.safetensors" in out
    for name in ("config.json", "README.md", "modeling_turkish_clip.py", "tokenizer.json"):
        assert f"  {name}" in out
    assert "me/tr-clip" in out


def test_push_creates_repo_branch_and_uploads_the_folder(
    monkeypatch, fake_api, converted, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    argv = ["push", str(converted.folder), "--repo-id", "me/tr-clip"]
    code = hub_upload.main([*argv, "--revision", "v1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (api,) = fake_api.instances
    assert api.kwargs == {"token": SECRET}
    assert [name for name, _, _ in api.calls] == ["create_repo", "create_branch", "create_commit"]
    _, args, kwargs = api.calls[0]
    assert args == ("me/tr-clip",)
    assert kwargs == {"private": True, "exist_ok": True, "repo_type": "model"}
    _, args, kwargs = api.calls[1]
    assert args == ("me/tr-clip",) and kwargs["branch"] == "v1" and kwargs["exist_ok"] is True
    upload = api.calls[2][2]
    assert upload["repo_id"] == "me/tr-clip" and upload["revision"] == "v1"
    on_disk = {p.name: p.read_bytes() for p in converted.folder.iterdir()}
    assert api.commits == [on_disk]
    assert "commit/abc" in captured.out
    assert SECRET not in captured.out + captured.err + caplog.text


@pytest.mark.parametrize(
    ("flags", "private"), [([], True), (["--private"], True), (["--public"], False)]
)
def test_push_without_revision_skips_the_branch_and_is_private_unless_public(
    monkeypatch, fake_api, converted, capsys, flags, private
):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert hub_upload.main(["push", str(converted.folder), "--repo-id", "me/tr-clip", *flags]) == 0
    (api,) = fake_api.instances
    assert [name for name, _, _ in api.calls] == ["create_repo", "create_commit"]
    assert api.calls[0][2]["private"] is private
    assert api.calls[1][2]["revision"] is None
    visibility = "private" if private else "public"
    assert f"{visibility} if new" in capsys.readouterr().out


def test_public_and_private_together_are_a_usage_error(converted):
    argv = ["push", str(converted.folder), "--repo-id", "me/tr-clip", "--public", "--private"]
    with pytest.raises(SystemExit) as error, contextlib.redirect_stderr(io.StringIO()):
        hub_upload.main(argv)
    assert error.value.code == 2


def test_failed_upload_explains_without_the_token(monkeypatch, fake_api, converted, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    response = SimpleNamespace(headers={}, request=None)
    # A server (or proxy) that echoes the credentials back must not get them printed.
    fake_api.upload_error = HfHubHTTPError(
        f"403 Forbidden: Authorization: Bearer {SECRET}", response=response
    )
    code = hub_upload.main(["push", str(converted.folder), "--repo-id", "me/tr-clip"])
    captured = capsys.readouterr()
    assert code == 1
    assert "403 Forbidden" in captured.err and "write access" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert SECRET not in captured.out + captured.err + caplog.text


def test_push_without_any_token_says_how_to_log_in(monkeypatch, fake_api, converted, capsys):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    code = hub_upload.main(["push", str(converted.folder), "--repo-id", "me/tr-clip"])
    assert code == 1
    assert "HF_TOKEN" in capsys.readouterr().err
    assert fake_api.instances == []


@pytest.mark.parametrize("damage", ["corrupt config.json", "pickle file", "no safetensors"])
def test_push_refuses_a_folder_that_would_not_load_safely(
    damage, monkeypatch, fake_api, folder_copy, capsys
):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    if damage == "corrupt config.json":
        (folder_copy / "config.json").write_text('{"model_type": "turkish_clip", ')
        expected = "does not load"
    elif damage == "pickle file":
        torch.save({"w": torch.zeros(1)}, folder_copy / "pytorch_model.bin")
        expected = "pytorch_model.bin"
    else:
        (folder_copy / "model.safetensors").unlink()
        expected = "no model.safetensors"
    for extra in ([], ["--dry-run"]):
        code = hub_upload.main(["push", str(folder_copy), "--repo-id", "me/tr-clip", *extra])
        err = capsys.readouterr().err
        assert code == 1
        assert expected in err and str(folder_copy) in err
    assert fake_api.instances == []


def test_push_of_a_missing_folder_fails_cleanly(tmp_path, fake_api, capsys):
    code = hub_upload.main(["push", str(tmp_path / "nowhere"), "--repo-id", "me/tr-clip"])
    assert code == 1
    assert "nowhere is not a folder" in capsys.readouterr().err
