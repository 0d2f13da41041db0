"""The model fingerprint guards an index's image rows: it changes with what changes image
embeddings (the image tower, its projection and settings, the pixel settings), and only with
that, wherever the model lives and whichever backend runs it."""

import hashlib
import shutil
from pathlib import Path

import pytest
import safetensors
import torch
from builders import save_tiny_model_folder, tiny_model, tiny_processor, tiny_student
from transformers import AutoModel, AutoProcessor

from search import fingerprint as fingerprint_module
from search.fingerprint import (
    FingerprintDifference,
    ModelMismatchError,
    check_model_for_index,
    compare_with_index,
    fingerprint_differences,
    is_image_side,
    model_fingerprint,
)
from turkish_clip import save_model_folder


def load(folder: Path, **options):
    return AutoModel.from_pretrained(folder, trust_remote_code=True, **options)


def legacy_record(folder: Path) -> dict[str, str]:
    """A fingerprint as indexes recorded it before: the whole weights file's SHA-256."""
    current = model_fingerprint(load(folder), tiny_processor())
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    return {"weights": weights, "image_processor": current["image_processor"], "tokenizer": "x"}


def test_one_folder_has_one_fingerprint_in_float32_int8_and_onnxruntime(tiny_onnx_dir) -> None:
    from inference.onnx_backend import OnnxTurkishCLIP

    loads = [
        load(tiny_onnx_dir),
        load(tiny_onnx_dir, int8=True),
        OnnxTurkishCLIP.from_pretrained(tiny_onnx_dir),
        OnnxTurkishCLIP.from_pretrained(tiny_onnx_dir, int8=True),
    ]
    processor = AutoProcessor.from_pretrained(tiny_onnx_dir, trust_remote_code=True)
    fingerprints = [model_fingerprint(model, processor) for model in loads]
    assert all(fingerprint == fingerprints[0] for fingerprint in fingerprints)
    assert set(fingerprints[0]) == {"image_tower", "image_processor"}


def test_the_file_and_the_same_tensors_in_memory_agree(tmp_path: Path) -> None:
    processor = tiny_processor()
    folder = save_tiny_model_folder(tmp_path / "model")
    assert model_fingerprint(load(folder), processor) == model_fingerprint(tiny_model(), processor)


def test_a_moved_folder_and_a_copy_with_onnx_files_keep_the_fingerprint(
    tmp_path: Path, tiny_onnx_dir
) -> None:
    processor = tiny_processor()
    plain = save_tiny_model_folder(tmp_path / "plain")
    before = model_fingerprint(load(plain), processor)
    moved = plain.rename(tmp_path / "elsewhere")
    assert model_fingerprint(load(moved), processor) == before
    with_onnx = shutil.copytree(tiny_onnx_dir, tmp_path / "copy")  # same seed, ONNX files added
    assert model_fingerprint(load(with_onnx), processor) == before


def test_a_student_with_the_same_image_tower_has_the_same_fingerprint(tmp_path: Path) -> None:
    processor = tiny_processor()
    teacher = save_tiny_model_folder(tmp_path / "teacher")
    student = save_model_folder(tiny_student(), processor, tmp_path / "student")
    weights = [(folder / "model.safetensors").read_bytes() for folder in (teacher, student)]
    assert weights[0] != weights[1]
    expected = model_fingerprint(load(teacher), processor)
    assert model_fingerprint(load(student), processor) == expected
    processor.tokenizer.add_tokens(["yepyeni"])  # a text-side change of the processor
    assert model_fingerprint(load(student), processor) == expected


def test_only_the_image_side_tensors_are_read(tmp_path: Path, monkeypatch) -> None:
    folder = save_tiny_model_folder(tmp_path / "model")
    read = []
    original = safetensors.safe_open

    class Recording:
        def __init__(self, *args, **kwargs):
            self.file = original(*args, **kwargs)

        def __enter__(self):
            self.inner = self.file.__enter__()
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def keys(self):
            return self.inner.keys()

        def get_tensor(self, name):
            read.append(name)
            return self.inner.get_tensor(name)

    model = load(folder)
    monkeypatch.setattr(safetensors, "safe_open", Recording)
    fingerprint_module.image_tower_digest(model)
    assert read and all(name.startswith(("vision_model.", "visual_projection.")) for name in read)
    assert "visual_projection.weight" in read


def test_image_side_is_everything_but_the_text_side() -> None:
    for name in ("vision_model.encoder.layers.0.mlp.fc1.weight", "visual_projection.weight"):
        assert is_image_side(name)
    assert is_image_side("vision_model.head.probe")  # a SigLIP tower's attention-pool probe
    for name in ("text_model.embeddings.word_embeddings.weight", "text_projection.bias"):
        assert not is_image_side(name)
    assert not is_image_side("logit_scale") and not is_image_side("logit_bias")


def test_a_rewritten_folder_changes_the_image_tower_part(tmp_path: Path) -> None:
    folder = save_tiny_model_folder(tmp_path / "model")
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    before = model_fingerprint(load(folder), processor)
    shutil.rmtree(folder)
    save_tiny_model_folder(folder, seed=1)  # replaced in place, as `convert --force` does
    after = model_fingerprint(load(folder), processor)
    assert fingerprint_differences(before, after) == ["image_tower"]


def test_the_same_weights_in_memory_have_the_same_fingerprint() -> None:
    processor = tiny_processor()
    assert model_fingerprint(tiny_model(), processor) == model_fingerprint(tiny_model(), processor)


def test_one_changed_image_weight_changes_the_image_tower_and_a_text_weight_nothing() -> None:
    model, processor = tiny_model(), tiny_processor()
    before = model_fingerprint(model, processor)
    with torch.no_grad():
        model.text_projection.weight[3, 5] += 1e-3
        model.logit_scale += 1.0
    assert model_fingerprint(model, processor) == before
    with torch.no_grad():
        model.visual_projection.weight[3, 5] += 1e-3
    assert fingerprint_differences(before, model_fingerprint(model, processor)) == ["image_tower"]


def test_a_tower_setting_that_changes_what_the_weights_compute_counts() -> None:
    processor = tiny_processor()
    before = model_fingerprint(tiny_model(), processor)
    other = tiny_model()
    other.config.vision_config.hidden_act = "gelu"  # same tensors, another activation
    assert fingerprint_differences(before, model_fingerprint(other, processor)) == ["image_tower"]


def test_pixel_settings_count_and_the_pixel_limit_does_not() -> None:
    model, processor = tiny_model(), tiny_processor()
    before = model_fingerprint(model, processor)
    processor.image_processor.max_image_pixels = 1000  # accepts or refuses; changes no pixel
    assert model_fingerprint(model, processor) == before
    processor.image_processor.image_mean = [0.5, 0.5, 0.5]
    assert fingerprint_differences(before, model_fingerprint(model, processor)) == [
        "image_processor"
    ]


def test_a_bfloat16_model_hashes_without_error_and_differs_from_float32() -> None:
    processor = tiny_processor()
    full = model_fingerprint(tiny_model(), processor)["image_tower"]
    half = model_fingerprint(tiny_model().to(torch.bfloat16), processor)["image_tower"]
    assert half != full and len(half) == 64


def test_a_record_of_the_older_layout_is_compared_as_it_was_made(tmp_path: Path) -> None:
    processor = tiny_processor()
    folder = save_tiny_model_folder(tmp_path / "model")
    record = legacy_record(folder)
    assert compare_with_index(record, load(folder), processor) is None
    moved = shutil.copytree(folder, tmp_path / "moved")
    assert compare_with_index(record, load(moved), processor) is None
    # The older record covers the whole file: a student cannot be told apart from another model.
    student = save_model_folder(tiny_student(), processor, tmp_path / "student")
    difference = compare_with_index(record, load(student), processor)
    assert difference == FingerprintDifference(("weights",), legacy=True)
    other = save_tiny_model_folder(tmp_path / "other", seed=1)
    assert compare_with_index(record, load(other), processor).parts == ("weights",)
    processor.image_processor.image_mean = [0.5, 0.5, 0.5]
    assert compare_with_index(record, load(folder), processor).parts == ("image_processor",)


def test_the_mismatch_error_is_typed_and_names_index_and_model(tmp_path: Path) -> None:
    processor = tiny_processor()
    meta = {"model": "/models/teacher", "fingerprint": model_fingerprint(tiny_model(), processor)}
    check_model_for_index("photos.index", meta, tiny_model(), processor)  # the same: passes
    version_1 = {"model": "/models/teacher"}  # no fingerprint: nothing to compare with
    check_model_for_index("photos.index", version_1, tiny_model(seed=1), processor)
    with pytest.raises(ModelMismatchError) as caught:
        check_model_for_index("photos.index", meta, tiny_model(seed=1), processor)
    assert caught.value.difference == FingerprintDifference(("image_tower",))
    assert (caught.value.index, caught.value.built_with) == ("photos.index", "/models/teacher")
    message = str(caught.value)
    assert "photos.index" in message and "/models/teacher" in message and "image tower" in message
    assert "--" not in message  # command-line flags are the command line's words (cli.worded)


def test_a_hub_model_is_hashed_from_its_cached_checkpoint_in_every_backend(
    tmp_path: Path, monkeypatch
) -> None:
    """A model from the Hub (here a fake cache: the checkpoint of commit 'abc' under `main`)
    gets the fingerprint of its folder, in float32 and in int8 alike."""
    import huggingface_hub.constants

    processor = tiny_processor()
    folder = save_tiny_model_folder(tmp_path / "model")
    repo = tmp_path / "cache" / "models--someone--tiny-clip"
    shutil.copytree(folder, repo / "snapshots" / "abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    expected = model_fingerprint(load(folder), processor)
    for int8 in (False, True):
        model = load(folder, int8=int8)
        model.name_or_path = "someone/tiny-clip"  # as from_pretrained("someone/tiny-clip") sets
        assert model_fingerprint(model, processor) == expected
