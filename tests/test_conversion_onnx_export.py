"""ONNX export: the files' interface, parity with the torch model at any batch and sequence shape,
the int8 files, atomic writes, and the model card, on the tiny model and the converted fixtures."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from builders import save_tiny_model_folder

import hub_upload
from conversion import onnx_export
from conversion.onnx_export import (
    FP32_TOLERANCE,
    INT8_MIN_COSINE,
    OnnxExportError,
    export_onnx,
    verify_images,
)
from turkish_clip import TurkishCLIPModel, TurkishCLIPProcessor

TEXTS = [
    "kedi",
    "Işıklı, ılık bir akşamda çiçek satan çocuk",
    "bir köpek",
    "İstanbul'da yağmurlu bir gün ve sahilde bir insan ile bir heykel",
    "ağaç",
]


def session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def normalize(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def run_text(path: Path, processor, texts: list[str], extra_padding: int = 0) -> np.ndarray:
    ids = processor.tokenize(texts)
    pad = processor.tokenizer.pad_token_id
    longest = max(map(len, ids)) + extra_padding
    input_ids = np.full((len(ids), longest), pad, dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for row, sequence in enumerate(ids):
        input_ids[row, : len(sequence)], mask[row, : len(sequence)] = sequence, 1
    return session(path).run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


def run_images(path: Path, processor, images) -> np.ndarray:
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"].numpy()
    return session(path).run(None, {"pixel_values": pixels})[0]


def dims(values) -> list:
    return [d.dim_param or d.dim_value for d in values.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def loaded(tiny_onnx_dir: Path):
    model = TurkishCLIPModel.from_pretrained(tiny_onnx_dir).eval()
    return model, TurkishCLIPProcessor.from_pretrained(tiny_onnx_dir)


def test_files_have_the_documented_inputs_and_outputs(tiny_onnx_dir, loaded):
    model, _ = loaded
    onnx_dir = tiny_onnx_dir / "onnx"
    assert sorted(path.name for path in onnx_dir.iterdir()) == [
        "export.json",
        "text_model.onnx",
        "text_model_quantized.onnx",
        "vision_model.onnx",
        "vision_model_quantized.onnx",
    ]
    int64, float32 = onnx.TensorProto.INT64, onnx.TensorProto.FLOAT
    for name in ("text_model.onnx", "text_model_quantized.onnx"):
        graph = onnx.load(onnx_dir / name).graph
        assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [
            ("input_ids", int64),
            ("attention_mask", int64),
        ]
        assert all(dims(i) == ["batch", "sequence"] for i in graph.input)
        assert [(o.name, o.type.tensor_type.elem_type, dims(o)) for o in graph.output] == [
            ("text_embeds", float32, ["batch", 16])
        ]
    for name in ("vision_model.onnx", "vision_model_quantized.onnx"):
        proto = onnx.load(onnx_dir / name)
        [pixel_values] = proto.graph.input
        assert (pixel_values.name, dims(pixel_values)) == ("pixel_values", ["batch", 3, 32, 32])
        assert [(o.name, dims(o)) for o in proto.graph.output] == [("image_embeds", ["batch", 16])]
        scale = {p.key: p.value for p in proto.metadata_props}["logit_scale"]
        assert float(scale) == pytest.approx(model.logit_scale.item(), abs=1e-6)


@pytest.mark.parametrize("extra_padding", [0, 7])
@pytest.mark.parametrize("texts", [TEXTS, TEXTS[:1], TEXTS[1:3]])
def test_text_file_matches_torch_at_any_batch_and_length(
    tiny_onnx_dir, loaded, texts, extra_padding
):
    model, processor = loaded
    expected = model.encode_text(texts, processor=processor, return_numpy=True)
    got = normalize(
        run_text(tiny_onnx_dir / "onnx" / "text_model.onnx", processor, texts, extra_padding)
    )
    assert np.abs(got - expected).max() <= FP32_TOLERANCE
    # Not normalised, as get_text_features: the norms are the torch model's too.
    raw = model.encode_text(texts, processor=processor, normalize=False, return_numpy=True)
    unnormalised = run_text(tiny_onnx_dir / "onnx" / "text_model.onnx", processor, texts)
    assert np.linalg.norm(unnormalised, axis=-1) == pytest.approx(
        np.linalg.norm(raw, axis=-1), rel=1e-4
    )


@pytest.mark.parametrize("count", [1, 3, 5])
def test_vision_file_matches_torch_at_any_batch_size(tiny_onnx_dir, loaded, count):
    model, processor = loaded
    images = verify_images()[:count]
    expected = model.encode_image(images, processor=processor, return_numpy=True)
    got = normalize(run_images(tiny_onnx_dir / "onnx" / "vision_model.onnx", processor, images))
    assert got.shape == (count, 16)
    assert np.abs(got - expected).max() <= FP32_TOLERANCE


def test_int8_files_are_quantised_and_stay_close(tiny_onnx_dir, loaded):
    _, processor = loaded
    onnx_dir = tiny_onnx_dir / "onnx"
    for tower in ("text_model", "vision_model"):
        ops = {node.op_type for node in onnx.load(onnx_dir / f"{tower}_quantized.onnx").graph.node}
        assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
        assert "MatMulInteger" not in {
            n.op_type for n in onnx.load(onnx_dir / f"{tower}.onnx").graph.node
        }
    # The image tower's patch embedding stays a float Conv: ConvInteger is the slower of the two.
    vision_ops = {n.op_type for n in onnx.load(onnx_dir / "vision_model_quantized.onnx").graph.node}
    assert "Conv" in vision_ops and "ConvInteger" not in vision_ops
    pairs = [
        (
            run_text(onnx_dir / name, processor, TEXTS)
            for name in ("text_model.onnx", "text_model_quantized.onnx")
        ),
        (
            run_images(onnx_dir / name, processor, verify_images())
            for name in ("vision_model.onnx", "vision_model_quantized.onnx")
        ),
    ]
    for fp32, int8 in pairs:
        cosines = (normalize(fp32) * normalize(int8)).sum(axis=-1)
        assert cosines.min() >= INT8_MIN_COSINE
        assert not np.array_equal(fp32, int8)  # really a different computation


def test_export_prints_its_figures_and_returns_them(tmp_path, capsys):
    folder = save_tiny_model_folder(tmp_path / "model")
    checks = export_onnx(folder)
    out = capsys.readouterr().out
    assert [check.file for check in checks] == ["text_model.onnx", "vision_model.onnx"]
    for check in checks:
        assert check.ok and 0 <= check.value <= FP32_TOLERANCE
        assert f"{check.file}: max abs difference" in out
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == [
        "export.json",
        "text_model.onnx",
        "vision_model.onnx",
    ]
    assert not list(folder.glob(".onnx.staging-*"))


def test_failed_verification_keeps_no_new_file(tmp_path, monkeypatch, tiny_onnx_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, folder)
    before = {path.name: path.read_bytes() for path in (folder / "onnx").iterdir()}
    monkeypatch.setattr(onnx_export, "FP32_TOLERANCE", -1.0)  # no export can pass
    with pytest.raises(OnnxExportError, match="text_model.onnx: max abs difference"):
        export_onnx(folder, int8=True)
    # The earlier export is untouched, byte for byte, and no staging folder is left.
    assert {path.name: path.read_bytes() for path in (folder / "onnx").iterdir()} == before
    assert not list(folder.glob(".onnx.staging-*"))


def test_interrupted_export_leaves_no_onnx_file(tmp_path, monkeypatch):
    folder = save_tiny_model_folder(tmp_path / "model")

    def fail(source, target, op_types=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "quantize_int8", fail)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(folder, int8=True)
    assert not list(folder.glob("**/*.onnx"))


def test_int8_below_the_bound_is_refused(tmp_path, monkeypatch):
    folder = save_tiny_model_folder(tmp_path / "model")
    monkeypatch.setattr(onnx_export, "INT8_MIN_COSINE", 1.5)
    with pytest.raises(OnnxExportError, match="text_model_quantized.onnx: min cosine"):
        export_onnx(folder, int8=True)
    assert not list(folder.glob("**/*.onnx"))


def test_export_without_int8_removes_stale_int8_files(tmp_path, tiny_onnx_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, folder)
    export_onnx(folder)
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == [
        "export.json",
        "text_model.onnx",
        "vision_model.onnx",
    ]


def test_export_onnx_command_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert hub_upload.main(["export-onnx", str(tmp_path / "empty")]) == 1
    assert "no config.json" in capsys.readouterr().err
    assert hub_upload.main(["export-onnx", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_export_onnx_command_updates_the_model_card_once(tmp_path, capsys):
    folder = save_tiny_model_folder(tmp_path / "model")
    (folder / "README.md").write_text("# Card\n\nText.\n\n## License\n\nMIT.\n", encoding="utf-8")
    assert hub_upload.main(["export-onnx", str(folder), "--int8"]) == 0
    assert hub_upload.main(["export-onnx", str(folder), "--int8"]) == 0
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.count("## ONNX") == 1
    assert card.index("## ONNX") < card.index("## License")
    for name in ("text_model.onnx", "vision_model.onnx", "text_model_quantized.onnx"):
        assert f"`onnx/{name}`" in card
    assert "wrote onnx/text_model.onnx" in capsys.readouterr().out


def test_convert_int8_needs_onnx(tmp_path, capsys):
    assert hub_upload.main(["convert", "--output", str(tmp_path / "out"), "--int8"]) == 1
    assert "pass it with --onnx" in capsys.readouterr().err


@pytest.fixture(scope="module")
def converted_with_onnx(tmp_path_factory, fixtures_dir, tiny_clip_archive) -> Path:
    """The committed stand-ins of the original checkpoints, converted with `--onnx --int8`."""
    folder = tmp_path_factory.mktemp("converted-onnx") / "turkish-clip"
    argv = ["convert", "--output", str(folder), "--text-model", str(fixtures_dir / "tf_distilbert")]
    argv += ["--head", str(fixtures_dir / "head_tiny.h5"), "--clip", str(tiny_clip_archive.path)]
    assert hub_upload.main([*argv, "--onnx", "--int8"]) == 0
    return folder


def test_converted_fixtures_export_matches_torch(converted_with_onnx):
    model = TurkishCLIPModel.from_pretrained(converted_with_onnx).eval()
    processor = TurkishCLIPProcessor.from_pretrained(converted_with_onnx)
    onnx_dir = converted_with_onnx / "onnx"
    expected = model.encode_text(TEXTS, processor=processor, return_numpy=True)
    got = normalize(run_text(onnx_dir / "text_model.onnx", processor, TEXTS, extra_padding=3))
    assert np.abs(got - expected).max() <= FP32_TOLERANCE
    images = verify_images()
    expected = model.encode_image(images, processor=processor, return_numpy=True)
    got = normalize(run_images(onnx_dir / "vision_model.onnx", processor, images))
    assert np.abs(got - expected).max() <= FP32_TOLERANCE


def test_converted_card_lists_the_onnx_files_and_figures(converted_with_onnx):
    card = (converted_with_onnx / "README.md").read_text(encoding="utf-8")
    section = card[card.index("## ONNX") : card.index("## License")]
    for name in ("text_model", "vision_model", "text_model_quantized", "vision_model_quantized"):
        assert f"`onnx/{name}.onnx`" in section
    assert section.count("| max abs difference of normalised embeddings |") == 2
    assert section.count("| min cosine to float32 |") == 2


# --------------------------------------------------------------------------------------------
# the export record, and leftovers of killed exports
# --------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_export_records_the_sha256_of_the_weights_it_came_from(tiny_onnx_dir):
    record = json.loads((tiny_onnx_dir / "onnx" / "export.json").read_text())
    weights = hashlib.sha256((tiny_onnx_dir / "model.safetensors").read_bytes()).hexdigest()
    assert record == {
        "weights_sha256": weights,
        "files": sorted(p.name for p in (tiny_onnx_dir / "onnx").glob("*.onnx")),
    }


def test_push_refuses_an_export_of_other_weights(tmp_path, tiny_onnx_dir, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, folder)
    other = save_tiny_model_folder(tmp_path / "other", seed=1)
    shutil.copyfile(other / "model.safetensors", folder / "model.safetensors")
    argv = ["push", str(folder), "--repo-id", "me/tr-clip", "--dry-run"]
    assert hub_upload.main(argv) == 1
    error = capsys.readouterr().err
    assert f"{folder / 'onnx'} was exported from other weights than" in error
    assert f"hub_upload.py export-onnx {folder}" in error


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def start_export(folder: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, str(ROOT / "hub_upload.py"), "export-onnx", str(folder), "--int8"]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def staging_folders(folder: Path) -> list[Path]:
    return list(folder.glob(".onnx.staging-*"))


def test_the_next_export_sweeps_the_staging_folder_of_a_killed_one(tmp_path):
    folder = save_tiny_model_folder(tmp_path / "model")
    export = start_export(folder)
    try:  # killed once its first file is written into the staging folder
        wait_for(lambda: any(s.glob("*.onnx") for s in staging_folders(folder)))
    finally:
        export.send_signal(signal.SIGKILL)
        export.wait(timeout=60)
    [leftover] = staging_folders(folder)
    assert leftover.name.startswith(f".onnx.staging-{export.pid}-")
    old_style = folder / ".onnx.staging-k3_a9z0q"  # as names were made before they held a pid
    old_style.mkdir()
    running = folder / f".onnx.staging-{os.getpid()}-x1y2z3"  # a live process's: kept
    running.mkdir()
    export_onnx(folder)
    assert staging_folders(folder) == [running]
    assert json.loads((folder / "onnx" / "export.json").read_text())["files"] == [
        "text_model.onnx",
        "vision_model.onnx",
    ]


def test_a_terminated_export_removes_its_staging_folder(tmp_path):
    folder = save_tiny_model_folder(tmp_path / "model")
    export = start_export(folder)
    try:
        wait_for(lambda: any(s.glob("*.onnx") for s in staging_folders(folder)))
    finally:
        export.send_signal(signal.SIGTERM)
        _, stderr = export.communicate(timeout=60)
    assert export.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert staging_folders(folder) == [] and not (folder / "onnx").exists()
