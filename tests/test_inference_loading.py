"""Model loading for the commands: weights and configuration from a folder or an index, never its
code, unless trusted by flag and pinned; every refusal one line naming the model."""

import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from builders import replace_model_code, retype_model_folder, save_tiny_model_folder
from PIL import Image

from inference.loading import (
    DEFAULT_MODEL,
    ModelChoiceError,
    choose_model,
    load_model,
    load_pipeline,
)
from turkish_clip import TurkishCLIPModel
from turkish_clip.pipeline_turkish_clip import TurkishCLIPZeroShotPipeline

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def copy_of(tmp_path: Path, model_dir: Path):
    def copy(name: str = "copy") -> Path:
        return Path(shutil.copytree(model_dir, tmp_path / name))

    return copy


@pytest.fixture
def image(tmp_path: Path) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.png")
    return tmp_path / "image.png"


def refusal(load, *args, **kwargs) -> str:
    with pytest.raises(ModelChoiceError) as caught:
        load(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_hostile_code_in_the_folder_never_runs(copy_of, tmp_path, model_dir, image) -> None:
    marker = tmp_path / "ran"
    folder = replace_model_code(copy_of(), marker)
    model = load_model(str(folder))
    pipe = load_pipeline(str(folder))
    assert not marker.exists()
    assert type(model) is TurkishCLIPModel and type(pipe) is TurkishCLIPZeroShotPipeline
    # The weights are the folder's own: the same embeddings as the untouched folder gives.
    reference = TurkishCLIPModel.from_pretrained(model_dir).eval()
    expected = reference.encode_image([image], return_numpy=True)
    np.testing.assert_allclose(model.encode_image([image], return_numpy=True), expected, atol=1e-6)
    scores = {
        item["label"]: item["score"] for item in pipe(str(image), candidate_labels=["a", "b"])
    }
    texts = reference.encode_labels(["a", "b"], [reference.config.default_template])
    logits = reference.logit_scale.exp().item() * torch.from_numpy(expected) @ texts.T
    assert [scores["a"], scores["b"]] == pytest.approx(logits.softmax(-1)[0].tolist(), abs=1e-5)


def test_pickle_weights_are_refused(copy_of) -> None:
    folder = copy_of()
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    message = refusal(load_model, str(folder))
    assert str(folder) in message and "pytorch_model.bin" in message and "pickle" in message
    (folder / "pytorch_model.bin").unlink()
    assert "no model.safetensors" in refusal(load_model, str(folder))


def test_another_model_type_needs_the_flag_and_then_runs_its_code(copy_of, tmp_path, image):
    marker = tmp_path / "ran"
    folder = retype_model_folder(copy_of(), "turkish_clip_fork", marker)
    for load in (load_model, load_pipeline):
        message = refusal(load, str(folder))
        assert str(folder) in message and "turkish_clip_fork" in message
        assert "trust_remote_code" in message
    assert not marker.exists()
    model = load_model(str(folder), trust_remote_code=True)
    assert marker.read_text() == "ran"
    assert model.config.model_type == "turkish_clip_fork"
    ranked = load_pipeline(str(folder), trust_remote_code=True)(image, candidate_labels=["a", "b"])
    assert sorted(item["label"] for item in ranked) == ["a", "b"]


@pytest.mark.parametrize("revision", [None, "main", "v1.0", SHA[:12], SHA.upper(), SHA + "0"])
def test_trusted_hub_code_needs_a_full_commit_sha(revision) -> None:
    message = refusal(load_model, "someone/clip-fork", revision, trust_remote_code=True)
    assert "someone/clip-fork" in message and "40-character commit sha" in message
    assert repr(revision) in message


def test_unreachable_hub_model_is_one_line_naming_it(monkeypatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    message = refusal(load_model, "someone/clip-fork", SHA, trust_remote_code=True)
    assert f"'someone/clip-fork@{SHA}' cannot be loaded" in message
    assert message.endswith("offline mode is on (HF_HUB_OFFLINE)")


def test_missing_or_wrong_folders_are_named(tmp_path, model_dir) -> None:
    missing = tmp_path / "nowhere" / "model"
    assert refusal(load_model, str(missing)) == f"model folder {str(missing)!r} not found"
    message = refusal(load_model, DEFAULT_MODEL)
    assert "hub_upload.py convert" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no config.json" in refusal(load_model, str(empty))
    weights = str(model_dir / "model.safetensors")
    assert refusal(load_model, weights) == f"model {weights!r} is a file, not a model folder"
    message = refusal(load_model, str(model_dir), "main")
    assert "'main'" in message and "local folder" in message


def test_broken_config_and_tokenizer_are_one_line(copy_of) -> None:
    folder = copy_of("config")
    (folder / "config.json").write_text("{ not json")
    assert "config.json cannot be read" in refusal(load_model, str(folder))
    folder = copy_of("tokenizer")
    (folder / "tokenizer.json").write_text("[]")
    (folder / "tokenizer_config.json").unlink()
    message = refusal(load_model, str(folder))
    assert message.startswith(f"model {str(folder)!r} cannot be loaded")


def test_choose_model_takes_the_index_model_by_default_and_any_named_one(model_dir) -> None:
    meta = {"model": str(model_dir), "revision": None}
    assert choose_model(None, None, meta) == (str(model_dir), None)
    assert choose_model(str(model_dir), None, meta) == (str(model_dir), None)
    # Names are not compared: whether its embeddings fit is decided by content, once loaded.
    assert choose_model("someone/other", "v2", meta) == ("someone/other", "v2")
    gone = {"model": str(model_dir.parent / "moved-away"), "revision": None}
    message = refusal(choose_model, None, None, gone)
    assert "moved-away" in message and "gone" in message  # the command line adds its hint
    for broken in ({}, {"model": 3, "revision": None}, {"model": "a", "revision": ["b"]}):
        assert "meta.json names no model" in refusal(choose_model, None, None, broken)


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_hub_is_said_at_once_without_the_clients_retries(monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub import constants

    from inference import loading

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked = []
    real_download = huggingface_hub.hf_hub_download

    def download(*args, **kwargs):
        asked.append(kwargs.get("local_files_only", False))
        return real_download(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert not loading.hub_reachable()
    with pytest.raises(loading.HubUnreachableError) as refused:
        loading.load_model(loading.ModelSpec("someone/missing-model"))
    message = str(refused.value)
    assert "'someone/missing-model' cannot be loaded" in message and "cannot be reached" in message
    assert "\n" not in message
    assert asked == [True]  # only the local cache was asked, never the network


def test_a_reachable_hub_is_asked(monkeypatch, http_server) -> None:
    from huggingface_hub import constants

    from inference import loading

    monkeypatch.setattr(constants, "ENDPOINT", http_server.url("").rstrip("/"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert loading.hub_reachable()
