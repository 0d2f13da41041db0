"""Tests for conversion/checkpoints.py: every mapping is checked against the ORIGINAL libraries' own
outputs (OpenAI `clip`, TensorFlow/Keras numbers stored in fixtures), not against a re-derivation
of the mapping, and every malformed checkpoint must be refused with a message naming the tensor."""

from __future__ import annotations

import io
import json
import shutil
import urllib.request
import warnings
from pathlib import Path
from types import SimpleNamespace

import h5py
import huggingface_hub
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    DistilBertConfig,
    DistilBertModel,
)

from conversion import checkpoints as cc

TF_PREFIX = "distilbert/tf_distil_bert_model/distilbert"
LAMBDA_MARKER_ENV = "TURKISH_CLIP_LAMBDA_MARKER"

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit:FutureWarning",  # clip.load uses torch.jit.load on OpenAI's archives
    "ignore:pkg_resources:UserWarning",
    "ignore:pkg_resources:DeprecationWarning",
)


def _load_clip(path: Path):
    import clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model, _ = clip.load(str(path), device="cpu", jit=False)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Image tower
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_vision(tiny_clip_archive):
    """(state dict, config kwargs, logit_scale) read from the tiny OpenAI-format archive."""
    return cc.read_clip_vision(str(tiny_clip_archive.path))


def test_tiny_clip_archive_is_like_openais(tiny_clip_archive):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(tiny_clip_archive.path), map_location="cpu")
    assert isinstance(scripted, torch.jit.ScriptModule)
    assert scripted.state_dict()["visual.conv1.weight"].dtype == torch.float16
    model = _load_clip(tiny_clip_archive.path)
    assert model.visual.conv1.weight.dtype == torch.float32  # clip.load upcasts on CPU


def test_clip_vision_matches_openai_encode_image(tiny_clip_archive, clip_vision):
    state, config, _ = clip_vision
    hf = CLIPVisionModelWithProjection(CLIPVisionConfig(**config)).eval()
    hf.load_state_dict(state, strict=True)
    original = _load_clip(tiny_clip_archive.path)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = original.encode_image(images)
        found = hf(pixel_values=images).image_embeds
    assert found.shape == expected.shape == (4, 16)
    torch.testing.assert_close(found, expected, rtol=0, atol=1e-5)


def test_clip_vision_config_and_logit_scale_come_from_the_checkpoint(
    tiny_clip_archive, clip_vision
):
    state, config, logit_scale = clip_vision
    sizes = tiny_clip_archive.sizes
    assert config == {
        "hidden_size": sizes["vision_width"],
        "intermediate_size": 4 * sizes["vision_width"],
        "num_hidden_layers": sizes["vision_layers"],
        "num_attention_heads": sizes["vision_width"] // 64,
        "image_size": sizes["image_resolution"],
        "patch_size": sizes["vision_patch_size"],
        "projection_dim": sizes["embed_dim"],
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }
    assert logit_scale.shape == ()
    assert logit_scale.dtype == torch.float32
    assert logit_scale.item() == pytest.approx(tiny_clip_archive.logit_scale, abs=1e-6)
    assert logit_scale.item() == _load_clip(tiny_clip_archive.path).logit_scale.item()
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in state.values())


def _fake_clip_load(monkeypatch, visual_state: dict, logit_scale: torch.Tensor) -> list:
    """Make clip.load return a stand-in whose `visual` has `visual_state`; record the calls."""
    import clip

    calls = []

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        visual = SimpleNamespace(state_dict=lambda: dict(visual_state))
        return SimpleNamespace(visual=visual, logit_scale=logit_scale), None

    monkeypatch.setattr(clip, "load", fake_load)
    return calls


def test_clip_vision_model_name_goes_to_clip_load(monkeypatch, tiny_clip_archive):
    original = _load_clip(tiny_clip_archive.path)
    calls = _fake_clip_load(monkeypatch, original.visual.state_dict(), original.logit_scale)
    state, _, _ = cc.read_clip_vision("ViT-B/32")
    assert calls == [("ViT-B/32", {"device": "cpu", "jit": False})]
    assert "visual_projection.weight" in state


@pytest.mark.parametrize(
    ("change", "named", "shape_text"),
    [
        ("drop", "vision_model.encoder.layers.1.layer_norm2.bias", "(128,)"),
        ("extra", "visual.transformer.resblocks.0.attn.bias_k", "(1, 1, 128)"),
        ("reshape", "visual.transformer.resblocks.0.mlp.c_fc.bias", "expected (512,)"),
    ],
)
def test_clip_vision_refuses_mismatches(monkeypatch, tiny_clip_archive, change, named, shape_text):
    original = _load_clip(tiny_clip_archive.path)
    visual = dict(original.visual.state_dict())
    if change == "drop":
        del visual["transformer.resblocks.1.ln_2.bias"]
    elif change == "extra":
        visual["transformer.resblocks.0.attn.bias_k"] = torch.zeros(1, 1, 128)
    else:
        visual["transformer.resblocks.0.mlp.c_fc.bias"] = torch.zeros(511)
    _fake_clip_load(monkeypatch, visual, original.logit_scale)
    with pytest.raises(ValueError, match="problem") as error:
        cc.read_clip_vision("tiny")
    assert named in str(error.value)
    assert shape_text in str(error.value)


# --------------------------------------------------------------------------------------------
# Projection head
# --------------------------------------------------------------------------------------------


def test_real_head_matches_keras(shared_dir, fixtures_dir):
    weight, bias = cc.read_projection_head(shared_dir / "clip_head.h5")
    assert weight.shape == (512, 768)
    assert bias.shape == (512,)
    expected = np.load(fixtures_dir / "real_head_expected.npz")
    inputs = torch.from_numpy(expected["inputs"]).double()
    found = (inputs @ weight.double().T + bias.double()).numpy()
    # Keras summed 768 float32 products (outputs up to ~16, so its own rounding is ~1e-5 in
    # absolute terms): allow 1e-6 of the magnitude of the summed terms, |x| @ |W|.T + |b|.
    scale = (inputs.abs() @ weight.double().abs().T + bias.double().abs()).numpy()
    assert np.all(np.abs(found - expected["outputs"]) <= 1e-6 * scale)
    assert np.array_equal(expected["outputs"][2], bias.numpy())  # input row 2 is all zeros


def test_tiny_head_reads_as_linear(fixtures_dir):
    weight, bias = cc.read_projection_head(fixtures_dir / "head_tiny.h5")
    assert weight.shape == (16, 32)
    assert bias.shape == (16,)
    assert weight.dtype == bias.dtype == torch.float32
    with h5py.File(fixtures_dir / "head_tiny.h5", "r") as h5:
        kernel = h5["model_weights/dense/dense/kernel:0"][()]
    # Keras computes x @ kernel; torch Linear computes x @ weight.T
    x = np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32)
    np.testing.assert_allclose((torch.from_numpy(x) @ weight.T).numpy(), x @ kernel, atol=1e-6)


def test_lambda_head_is_refused_without_running_it(fixtures_dir, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv(LAMBDA_MARKER_ENV, str(marker))
    with pytest.raises(ValueError, match="Lambda 'lambda'"):
        cc.read_projection_head(fixtures_dir / "head_lambda.h5")
    assert not marker.exists()


def test_two_dense_head_is_refused_naming_the_second(fixtures_dir):
    with pytest.raises(ValueError, match="Dense 'dense_1'"):
        cc.read_projection_head(fixtures_dir / "head_two_dense.h5")


def _write_head(
    path: Path,
    *,
    kernel_shape=(32, 16),
    bias_shape=(16,),
    units=16,
    activation="linear",
    use_bias=True,
    implicit_input=False,
    extra_tensor=False,
) -> Path:
    """A Keras-2.6-style head file written with h5py (layout as in the real clip_head.h5)."""
    dense = {"name": "dense", "units": units, "activation": activation, "use_bias": use_bias}
    layers = [{"class_name": "Dense", "config": dense}]
    if implicit_input:
        dense["batch_input_shape"] = [None, 32]
    else:
        input_config = {"batch_input_shape": [None, 32], "name": "input_1"}
        layers.insert(0, {"class_name": "InputLayer", "config": input_config})
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        group = h5.create_group("model_weights/dense/dense")
        if kernel_shape is not None:
            group["kernel:0"] = rng.standard_normal(kernel_shape).astype(np.float32)
        if bias_shape is not None:
            group["bias:0"] = rng.standard_normal(bias_shape).astype(np.float32)
        if extra_tensor:
            group["scale:0"] = np.ones(16, np.float32)
    return path


def test_h5py_head_with_implicit_input_layer_reads(tmp_path):
    weight, bias = cc.read_projection_head(_write_head(tmp_path / "h.h5", implicit_input=True))
    assert weight.shape == (16, 32)
    assert bias.shape == (16,)


_KERNEL = r"model_weights/dense/dense/kernel:0"
_BIAS = r"model_weights/dense/dense/bias:0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bias_shape": None}, rf"missing tensor {_BIAS} \(expected shape \(16,\)\)"),
        ({"kernel_shape": (16, 32)}, rf"{_KERNEL}: expected \(32, 16\), found \(16, 32\)"),
        ({"bias_shape": (15,)}, rf"{_BIAS}: expected \(16,\), found \(15,\)"),
        ({"extra_tensor": True}, r"unexpected tensor model_weights/dense/dense/scale:0"),
        ({"activation": "relu"}, r"Dense 'dense'.*activation 'relu'"),
        ({"use_bias": False}, r"Dense 'dense'.*use_bias False"),
    ],
)
def test_malformed_h5py_heads_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cc.read_projection_head(_write_head(tmp_path / "h.h5", **kwargs))


def test_head_without_model_config_is_refused(tmp_path):
    path = tmp_path / "weights_only.h5"
    with h5py.File(path, "w") as h5:
        h5["dense/dense/kernel:0"] = np.zeros((32, 16), np.float32)
    with pytest.raises(ValueError, match="no model_config"):
        cc.read_projection_head(path)


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, length: int | None = None) -> None:
        super().__init__(data)
        self.headers = {} if length is None else {"Content-Length": str(length)}


def test_head_url_is_downloaded_with_timeout(fixtures_dir, monkeypatch, tmp_path):
    data = (fixtures_dir / "head_tiny.h5").read_bytes()
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append((url, timeout))
        return _FakeResponse(data, len(data))

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    cc.download_file("https://example.invalid/clip_head.h5", tmp_path / "head.h5")
    weight, bias = cc.read_projection_head(tmp_path / "head.h5")
    local_weight, local_bias = cc.read_projection_head(fixtures_dir / "head_tiny.h5")
    assert calls == [("https://example.invalid/clip_head.h5", cc.HEAD_DOWNLOAD_TIMEOUT_S)]
    assert torch.equal(weight, local_weight)
    assert torch.equal(bias, local_bias)


@pytest.mark.parametrize("declare_length", [True, False])
def test_head_url_download_is_size_capped(fixtures_dir, monkeypatch, declare_length, tmp_path):
    data = (fixtures_dir / "head_tiny.h5").read_bytes()
    length = len(data) if declare_length else None
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _FakeResponse(data, length))
    monkeypatch.setattr(cc, "MAX_HEAD_BYTES", 1000)
    with pytest.raises(ValueError, match=r"more than the 1000 bytes allowed"):
        cc.download_file("http://example.invalid/clip_head.h5", tmp_path / "head.h5")


# --------------------------------------------------------------------------------------------
# Text tower
# --------------------------------------------------------------------------------------------


def _mean_pooled(model: DistilBertModel, input_ids: list[list[int]]) -> torch.Tensor:
    """Right-pad with 0 ([PAD]), run, and mean-pool over the mask, as the original encode_text."""
    width = max(len(ids) for ids in input_ids)
    ids = torch.tensor([row + [0] * (width - len(row)) for row in input_ids])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in input_ids])
    with torch.no_grad():
        states = model(input_ids=ids, attention_mask=mask).last_hidden_state
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1)


def test_tf_text_tower_reproduces_tensorflow_encode_text(fixtures_dir):
    state, config = cc.read_text_tower(fixtures_dir / "tf_distilbert")
    model = DistilBertModel(DistilBertConfig(**config)).eval()
    model.load_state_dict(state, strict=True)
    weight, bias = cc.read_projection_head(fixtures_dir / "head_tiny.h5")
    expected = json.loads((fixtures_dir / "text_expected.json").read_text(encoding="utf-8"))

    projected = _mean_pooled(model, expected["input_ids"]) @ weight.T + bias
    torch.testing.assert_close(projected, torch.tensor(expected["projected"]), rtol=0, atol=1e-5)
    normalized = torch.nn.functional.normalize(projected, dim=-1)
    torch.testing.assert_close(normalized, torch.tensor(expected["normalized"]), rtol=0, atol=1e-5)


def test_text_tower_returns_fp32_and_the_source_config(fixtures_dir):
    state, config = cc.read_text_tower(str(fixtures_dir / "tf_distilbert"))
    assert config["dim"] == 32
    assert config["n_layers"] == 2
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in state.values())
    assert state["transformer.layer.1.ffn.lin1.weight"].shape == (64, 32)  # kernel (32, 64).T


def _tf_copy(fixtures_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    folder = shutil.copytree(fixtures_dir / "tf_distilbert", tmp_path / "tf_distilbert")
    return folder, folder / "tf_model.h5"


def test_tf_text_missing_tensor_is_named(fixtures_dir, tmp_path):
    folder, h5_path = _tf_copy(fixtures_dir, tmp_path)
    with h5py.File(h5_path, "r+") as h5:
        del h5[f"{TF_PREFIX}/transformer/layer_._1/sa_layer_norm/beta:0"]
    with pytest.raises(ValueError, match=r"transformer\.layer\.1\.sa_layer_norm\.bias.*\(32,\)"):
        cc.read_text_tower(folder)


def test_tf_text_extra_tensor_is_named(fixtures_dir, tmp_path):
    folder, h5_path = _tf_copy(fixtures_dir, tmp_path)
    extra = f"{TF_PREFIX}/transformer/layer_._0/attention/q_lin/scale:0"
    with h5py.File(h5_path, "r+") as h5:
        h5[extra] = np.ones(32, np.float32)
    with pytest.raises(ValueError, match=f"unexpected source tensor {extra} with shape \\(32,\\)"):
        cc.read_text_tower(folder)


def test_tf_text_wrong_shape_is_named_with_both_shapes(fixtures_dir, tmp_path):
    folder, h5_path = _tf_copy(fixtures_dir, tmp_path)
    name = f"{TF_PREFIX}/transformer/layer_._0/ffn/lin1/kernel:0"
    with h5py.File(h5_path, "r+") as h5:
        del h5[name]
        h5[name] = np.ones((32, 65), np.float32)
    message = r"ffn/lin1/kernel:0 -> transformer\.layer\.0\.ffn\.lin1\.weight: expected \(64, 32\)"
    with pytest.raises(ValueError, match=message) as error:
        cc.read_text_tower(folder)
    assert "found (65, 32)" in str(error.value)


def test_tf_text_all_problems_reported_together(fixtures_dir, tmp_path):
    folder, h5_path = _tf_copy(fixtures_dir, tmp_path)
    with h5py.File(h5_path, "r+") as h5:
        del h5[f"{TF_PREFIX}/embeddings/LayerNorm/gamma:0"]
        del h5[f"{TF_PREFIX}/transformer/layer_._0/attention/v_lin/bias:0"]
    with pytest.raises(ValueError, match="2 problem") as error:
        cc.read_text_tower(folder)
    assert "embeddings.LayerNorm.weight" in str(error.value)
    assert "transformer.layer.0.attention.v_lin.bias" in str(error.value)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("distilbert", "renamed_top"),  # first component differs
        ("distilbert/tf_distil_bert_model", "distilbert/other_model_name"),  # middle differs
    ],
)
def test_tf_text_name_prefix_may_vary(fixtures_dir, tmp_path, old, new):
    folder, h5_path = _tf_copy(fixtures_dir, tmp_path)
    reference, _ = cc.read_text_tower(fixtures_dir / "tf_distilbert")
    with h5py.File(h5_path, "r+") as h5:
        h5.move(old, new)
    state, _ = cc.read_text_tower(folder)
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_tf_text_without_distilbert_component_is_refused(fixtures_dir, tmp_path):
    folder, h5_path = _tf_copy(fixtures_dir, tmp_path)
    with h5py.File(h5_path, "r+") as h5:
        h5.move("distilbert/tf_distil_bert_model/distilbert", "distilbert/tf_distil_bert_model/x")
    with pytest.raises(ValueError, match="unexpected source tensor"):
        cc.read_text_tower(folder)


def _tiny_distilbert() -> DistilBertModel:
    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=100, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64
    )
    return DistilBertModel(config).eval()


def test_safetensors_source_round_trips_exactly(tmp_path):
    model = _tiny_distilbert()
    model.save_pretrained(tmp_path / "st")
    assert (tmp_path / "st" / "model.safetensors").is_file()
    state, config = cc.read_text_tower(tmp_path / "st")
    original = model.state_dict()
    assert state.keys() == original.keys()
    assert all(torch.equal(state[k], original[k]) for k in original)
    assert config["dim"] == 32


def test_pytorch_bin_source_with_task_prefix_and_position_ids(tmp_path):
    model = _tiny_distilbert()
    folder = tmp_path / "bin"
    folder.mkdir()
    model.config.to_json_file(folder / "config.json")
    raw = {f"distilbert.{k}": v for k, v in model.state_dict().items()}
    raw["distilbert.embeddings.position_ids"] = torch.arange(64)[None]  # old checkpoints have it
    torch.save(raw, folder / "pytorch_model.bin")
    state, _ = cc.read_text_tower(folder)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_text_folder_without_weights_or_wrong_model_type_is_refused(fixtures_dir, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    shutil.copy(fixtures_dir / "tf_distilbert" / "config.json", folder / "config.json")
    with pytest.raises(ValueError, match=r"none of model\.safetensors"):
        cc.read_text_tower(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type is 'bert'"):
        cc.read_text_tower(folder)


def test_hub_id_is_fetched_with_snapshot_download(fixtures_dir, monkeypatch):
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(fixtures_dir / "tf_distilbert")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    state, config = cc.read_text_tower(cc.DEFAULT_TEXT_SOURCE)
    assert [repo for repo, _ in calls] == ["mys/distilbert-base-turkish-cased-clip"]
    patterns = calls[0][1]["allow_patterns"]
    assert {"config.json", "tf_model.h5", "vocab.txt", "tokenizer_config.json"} <= set(patterns)
    assert config["dim"] == 32
    assert "embeddings.word_embeddings.weight" in state


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def test_assembled_state_dict_has_target_names_and_saves(fixtures_dir, clip_vision, tmp_path):
    text, _ = cc.read_text_tower(fixtures_dir / "tf_distilbert")
    head = cc.read_projection_head(fixtures_dir / "head_tiny.h5")
    vision, _, logit_scale = clip_vision
    state = cc.assemble_state_dict(text, head, vision, logit_scale)

    expected_keys = (
        {f"text_model.{k}" for k in text}
        | {"text_projection.weight", "text_projection.bias", "logit_scale"}
        | set(vision)
    )
    assert set(state) == expected_keys
    assert any(k.startswith("vision_model.encoder.layers.1.") for k in state)
    assert state["text_projection.weight"].shape == (16, 32)
    assert state["visual_projection.weight"].shape == (16, 128)
    assert state["logit_scale"].shape == ()
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in state.values())
    pointers = [t.untyped_storage().data_ptr() for t in state.values()]
    assert len(set(pointers)) == len(pointers)  # no shared storage
    save_file(state, tmp_path / "model.safetensors")
    loaded = load_file(tmp_path / "model.safetensors")
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_assemble_refuses_a_head_that_does_not_join_the_towers(fixtures_dir, clip_vision):
    text, _ = cc.read_text_tower(fixtures_dir / "tf_distilbert")
    vision, _, logit_scale = clip_vision
    head = (torch.zeros(16, 31), torch.zeros(16))
    with pytest.raises(ValueError, match=r"expected \(16, 32\)"):
        cc.assemble_state_dict(text, head, vision, logit_scale)
