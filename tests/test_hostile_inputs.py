"""Hostile inputs: pixels out of range, servers that drip, files with a BOM, folders that would
leak secrets on `push`. Each gets a correct result or a one-line error naming the input."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import save_tiny_model_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import hub_upload
from conversion.publishing import ALLOWED_PATTERNS, plan_upload
from evaluation.inputs import read_captions, read_class_labels
from turkish_clip import TurkishCLIPImageProcessor, image_loading
from turkish_clip.image_loading import FLOAT_TOLERANCE, ImageLoadError, load_image, to_rgb

# --------------------------------------------------------------------------------------------
# pixels
# --------------------------------------------------------------------------------------------

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
INT_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.uint32)


def expected_pixels(values: np.ndarray) -> np.ndarray | None:
    """The documented rule, written out independently: uint8 as is; floats in 0..1, clipped
    within FLOAT_TOLERANCE; integers 8-bit when within 0..255 (uint16 always 16-bit), 16-bit
    within 0..65535; None where the input must be refused."""
    if values.dtype == np.bool_:
        return None
    if values.dtype.kind == "f":
        wide = values.astype(np.float64)
        if not np.isfinite(wide).all() or wide.min() < -FLOAT_TOLERANCE:
            return None
        if wide.max() > 1 + FLOAT_TOLERANCE:
            return None
        return np.rint(np.clip(wide, 0, 1) * 255).astype(np.uint8)
    wide = values.astype(np.int64)
    if wide.min() < 0 or wide.max() > 65535:
        return None
    if values.dtype != np.uint16 and wide.max() <= 255:
        return wide.astype(np.uint8)
    return np.rint(wide * 255 / 65535).astype(np.uint8)


def value_regimes(dtype) -> list[st.SearchStrategy]:
    """Ways to fill an array: in range, just outside, anything at all, and the edge values."""
    if np.dtype(dtype).kind == "f":
        width = np.dtype(dtype).itemsize * 8
        edges = st.sampled_from([1.0001, -1e-6, 1.0 + FLOAT_TOLERANCE, 255.0]) | st.just(np.nan)
        return [
            st.floats(0, 1, width=width),
            st.floats(-0.375, 1.375, width=width),  # exact in float16 too
            st.floats(width=width),  # NaN, infinities, anything
            edges,
        ]
    info = np.iinfo(dtype)
    return [
        st.integers(0, min(255, info.max)),
        st.integers(max(0, info.min), min(65535, info.max)),
        st.integers(int(info.min), int(info.max)),
    ]


@st.composite
def pixel_arrays(draw) -> tuple[np.ndarray, str]:
    """(array, layout): any dtype, HW / HWC / CHW with 1, 3 or 4 channels, any values."""
    dtype = draw(st.sampled_from((*FLOAT_DTYPES, *INT_DTYPES, np.bool_)))
    layout = draw(st.sampled_from(["hw", "hwc", "chw"]))
    height = draw(st.integers(1, 4))
    # A CHW width of 1, 3 or 4 would read as HWC; that guess is not what is tested here.
    width = draw(st.sampled_from([2, 5])) if layout == "chw" else draw(st.integers(1, 5))
    channels = draw(st.sampled_from([1, 3, 4]))
    shape = {"hw": (height, width), "hwc": (height, width, channels)}.get(
        layout, (channels, height, width)
    )
    size = int(np.prod(shape))
    regimes = [st.booleans()] if dtype == np.bool_ else value_regimes(dtype)
    regime = regimes[draw(st.integers(0, len(regimes) - 1))]
    pool = draw(st.lists(regime, min_size=1, max_size=6))
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=size, max_size=size))
    return np.array([pool[i] for i in picks], dtype=dtype).reshape(shape), layout


def as_hwc(values: np.ndarray, layout: str) -> np.ndarray:
    hwc = values.transpose(1, 2, 0) if layout == "chw" else values
    return hwc[..., 0] if hwc.ndim == 3 and hwc.shape[-1] == 1 else hwc


def check_one_line_error(error: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pixel_arrays(), as_tensor=st.booleans())
def test_arrays_follow_the_documented_rule_or_are_refused_by_name(case, as_tensor):
    values, layout = case
    source = torch.from_numpy(values.copy()) if as_tensor else values
    expected = expected_pixels(as_hwc(values, layout))
    if expected is None:
        with pytest.raises(ImageLoadError) as error:
            load_image(source)
        check_one_line_error(error, type(source).__name__, str(values.dtype))
        return
    image = load_image(source)
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(to_rgb(Image.fromarray(expected))))


@pytest.mark.parametrize("bad", [1.0001, -1e-6])
def test_one_value_just_outside_0_1_does_not_blacken_the_image(bad):
    values = np.full((4, 4, 3), 0.8, dtype=np.float32)
    values[0, 0, 0] = bad
    pixels = np.asarray(load_image(values)).copy()
    assert pixels[0, 0, 0] == (255 if bad > 1 else 0)
    pixels[0, 0, 0] = 204
    assert (pixels == 204).all()  # rint(0.8 * 255) everywhere else


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 2.0, -0.5, 255.0])
def test_nan_infinite_or_far_outside_floats_are_refused_by_name(bad):
    values = np.full((3, 4, 5), 0.5, dtype=np.float32)
    values[1, 2, 3] = bad
    with pytest.raises(ImageLoadError) as error:
        load_image(values)
    check_one_line_error(error, "<ndarray float32 3x4x5>")
    processor = TurkishCLIPImageProcessor()
    with pytest.raises(ImageLoadError) as error:
        processor([np.zeros((4, 5, 3), np.uint8), torch.from_numpy(values)])
    check_one_line_error(error, "image 1 (<Tensor float32 3x4x5>)")


def test_bicubic_resized_tensor_overshooting_0_1_keeps_its_picture():
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0
    resized = torch.nn.functional.interpolate(edge, size=(40, 40), mode="bicubic")[0]
    assert resized.min() < 0 and resized.max() > 1  # the overshoot this test is about
    pixels = np.asarray(load_image(resized))
    expected = np.rint(resized.clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64) * 255)
    assert np.array_equal(pixels, expected.astype(np.uint8))
    assert pixels[:, :10].max() == 0 and pixels[:, -10:].min() == 255


def test_uint16_array_is_not_all_white():
    values = np.array([[0, 4096, 32768, 65535]], dtype=np.uint16)
    assert np.asarray(load_image(values))[0, :, 0].tolist() == [0, 16, 128, 255]


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (np.array([[-1, 5]], dtype=np.int32), "from -1 to 5"),
        (np.array([[0, 70000]], dtype=np.int64), "from 0 to 70000"),
        (np.ones((2, 2), dtype=bool), "bool"),
        (np.ones((2, 2), dtype=np.complex64), "complex64"),
        (np.zeros((0, 5, 3), dtype=np.uint8), "no pixels"),
    ],
)
def test_other_integer_ranges_and_types_are_refused_by_name(values, needle):
    with pytest.raises(ImageLoadError) as error:
        load_image(values)
    check_one_line_error(error, "<ndarray", needle)


# --------------------------------------------------------------------------------------------
# downloads
# --------------------------------------------------------------------------------------------

DEADLINE = 1.0
# Thread start-up and the socket shut-down on a busy 2-core machine; well under the drip time,
# which a download without a total deadline would take in full.
MARGIN = 2.0
DRIP_SECONDS = 6.0


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def drip(stop, data: bytes, interval: float = 0.1) -> Callable:
    """Writes `data` a byte at a time, for at most DRIP_SECONDS (then the connection closes)."""

    def write(handler):
        until = time.monotonic() + DRIP_SECONDS
        for byte in data:
            if stop.wait(interval) or time.monotonic() > until:
                return
            handler.wfile.write(bytes([byte]))

    return write


def drip_body(stop):
    data = png_bytes()

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        drip(stop, data)(handler)

    return route


def drip_headers(stop):
    data = png_bytes()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
    return drip(stop, head + data)


@pytest.mark.parametrize("route", [drip_body, drip_headers])
def test_a_dripping_server_cannot_hold_a_download_past_its_deadline(http_server, route):
    http_server.routes["/damla.png"] = route(http_server.stop)
    url = http_server.url("/damla.png")
    started = time.monotonic()
    with pytest.raises(ImageLoadError) as error:
        load_image(url, timeout=DEADLINE)
    elapsed = time.monotonic() - started
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + MARGIN
    check_one_line_error(error, url, "within 1 s")


def test_the_pipeline_timeout_is_the_whole_download_deadline(http_server, tmp_path):
    from transformers import pipeline

    folder = save_tiny_model_folder(tmp_path / "model")
    classifier = pipeline(
        "zero-shot-image-classification", model=str(folder), trust_remote_code=True
    )
    http_server.routes["/damla.png"] = drip_body(http_server.stop)
    url = http_server.url("/damla.png")
    started = time.monotonic()
    # The pipeline runs the folder's copy of image_loading, whose ImageLoadError is its own class.
    with pytest.raises(ValueError, match="damla.png.*within 1 s"):
        classifier(url, candidate_labels=["kedi", "köpek"], timeout=DEADLINE)
    assert time.monotonic() - started < DEADLINE + MARGIN


def test_size_cap_holds_with_and_without_a_content_length(http_server, monkeypatch):
    monkeypatch.setattr(image_loading, "URL_MAX_BYTES", 1000)

    def huge_declared(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(10**12))
        handler.end_headers()

    def endless(handler):  # HTTP/1.0 style: no length, the body runs until the server stops
        handler.send_response(200)
        handler.end_headers()
        while not http_server.stop.is_set():
            handler.wfile.write(b"\0" * 4096)

    http_server.routes["/dev.png"] = huge_declared
    http_server.routes["/sonsuz.png"] = endless
    for path in ("/dev.png", "/sonsuz.png"):
        url = http_server.url(path)
        with pytest.raises(ImageLoadError) as error:
            load_image(url, timeout=5.0)
        check_one_line_error(error, url, "larger than 1,000 bytes")


def test_a_redirect_to_a_local_file_is_refused(http_server, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())

    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", secret.as_uri())
        handler.end_headers()

    http_server.routes["/yonlendir.png"] = redirect
    url = http_server.url("/yonlendir.png")
    with pytest.raises(ImageLoadError) as error:
        load_image(url)
    check_one_line_error(error, url)


def test_a_server_closing_early_is_named(http_server):
    def short(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "5000")
        handler.end_headers()
        handler.wfile.write(png_bytes()[:100])

    http_server.routes["/yarim.png"] = short
    url = http_server.url("/yarim.png")
    with pytest.raises(ImageLoadError) as error:
        load_image(url)
    check_one_line_error(error, url, "closed early")


# --------------------------------------------------------------------------------------------
# caption and class-label files
# --------------------------------------------------------------------------------------------

BOM = "\ufeff"


@pytest.mark.parametrize("name", ["classes.txt", "classes.json"])
def test_a_bom_in_class_label_files_is_stripped(tmp_path, name):
    mapping = {"kedi": "tekir kedi", "kopek": "köpek"}
    if name == "classes.txt":
        text = "".join(f"{folder}\t{label}\r\n" for folder, label in mapping.items())
    else:
        text = json.dumps(mapping, ensure_ascii=False)
    (tmp_path / name).write_text(BOM + text, encoding="utf-8")
    assert read_class_labels(tmp_path, ["kedi", "kopek"]) == mapping


def test_a_class_label_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "classes.txt").write_bytes("kedi\tçiçek\n".encode("cp1254"))
    with pytest.raises(ValueError) as error:
        read_class_labels(tmp_path, ["kedi"])
    check_one_line_error(error, "classes.txt", "not UTF-8")


CAPTION_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",)),
    min_size=1,
).filter(lambda text: text.strip() == text and text)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(CAPTION_TEXT, CAPTION_TEXT), min_size=1, max_size=5),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_captions_round_trip_whatever_characters_they_hold(tmp_path, rows, bom, newline):
    # U+2028, U+0085 (a mis-decoded "…") and the like are text inside a line, not line breaks.
    path = tmp_path / "captions.tsv"
    text = "".join(f"{image}\t{caption}{newline}" for image, caption in rows)
    path.write_text((BOM if bom else "") + text, encoding="utf-8", newline="")
    assert read_captions(path) == [(tmp_path / image, caption) for image, caption in rows]


def test_caption_file_with_a_bom_names_the_real_first_image(tmp_path):
    path = tmp_path / "captions.tsv"
    path.write_text(BOM + "kedi.jpg\tbir kedi\nsahil.jpg\tsahilde bir insan\u2028ve köpek\n")
    assert read_captions(path) == [
        (tmp_path / "kedi.jpg", "bir kedi"),
        (tmp_path / "sahil.jpg", "sahilde bir insan\u2028ve köpek"),
    ]


# --------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def folder(model_folder, tmp_path, monkeypatch, fake_api) -> Path:
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    return shutil.copytree(model_folder, tmp_path / "model")


def commits(fake_api) -> list[dict[str, bytes]]:
    return [commit for api in fake_api.instances for commit in api.commits]


def created(fake_api) -> list[dict]:
    return [kw for api in fake_api.instances for name, _, kw in api.calls if name == "create_repo"]


def model_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def push(capsys, folder: Path, *extra: str) -> tuple[int, str, str]:
    code = hub_upload.main(["push", str(folder), "--repo-id", "me/tr-clip", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_hidden_files_never_go_even_when_included(folder, fake_api, capsys):
    expected = model_files(folder)
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / ".ssh").mkdir()
    (folder / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (folder / "onnx").mkdir()
    (folder / "onnx" / ".notes").write_text("private")
    code, _, err = push(capsys, folder, "--include", ".env", "--include", "**")
    assert code == 1
    assert "--include '.env' matches no file" in err and "hidden files never go" in err
    code, out, err = push(capsys, folder, "--include", "**")
    assert code == 0, err
    assert commits(fake_api) == [expected]
    assert ".env" in out and ".ssh/" in out and "onnx/.notes" in out
    assert created(fake_api) == [{"private": True, "exist_ok": True, "repo_type": "model"}]


def test_stray_files_are_listed_and_refused_unless_included(folder, fake_api, capsys):
    expected = model_files(folder)
    (folder / "notes.txt").write_text("yapılacaklar")
    (folder / "checkpoint-500").mkdir()
    (folder / "checkpoint-500" / "model.safetensors").write_bytes(b"old weights")
    for extra in ([], ["--dry-run"]):
        code, out, err = push(capsys, folder, *extra)
        assert code == 1
        assert len(err.strip().splitlines()) == 1
        assert "checkpoint-500/model.safetensors" in err and "notes.txt" in err
        assert "--include" in err
    assert commits(fake_api) == []
    code, _, err = push(capsys, folder, "--include", "notes.txt", "--include", "checkpoint-*/**")
    assert code == 0, err
    expected["notes.txt"] = "yapılacaklar".encode()
    expected["checkpoint-500/model.safetensors"] = b"old weights"
    assert commits(fake_api) == [expected]


def test_dry_run_lists_exactly_what_goes(folder, fake_api, capsys):
    (folder / "onnx" / "extra").mkdir(parents=True)
    (folder / "onnx" / "model.onnx").write_bytes(b"onnx")
    (folder / "onnx" / "model.onnx_data").write_bytes(b"weights")
    (folder / "onnx" / "extra" / "other.onnx").write_bytes(b"nested")
    code, out, err = push(capsys, folder, "--include", "onnx/extra/*.onnx", "--dry-run")
    assert code == 0, err
    listed = {line.split()[-1] for line in out.splitlines() if line.startswith("  ")}
    assert push(capsys, folder, "--include", "onnx/extra/*.onnx")[0] == 0
    (sent,) = commits(fake_api)
    assert listed == set(sent)
    assert {"onnx/model.onnx", "onnx/model.onnx_data", "onnx/extra/other.onnx"} <= listed
    # `*` stays within a folder: without --include the nested file is refused.
    code, _, err = push(capsys, folder, "--dry-run")
    assert code == 1 and "onnx/extra/other.onnx" in err
    code, _, err = push(capsys, folder, "--include", "onnx/extra/*.onx", "--dry-run")
    assert code == 1 and "--include 'onnx/extra/*.onx' matches no file" in err


def test_links_leaving_the_folder_are_refused_even_when_included(
    folder, fake_api, tmp_path, capsys
):
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "hf_secret"}')
    (tmp_path / "elsewhere").mkdir()
    (folder / "generation_config.json").symlink_to(secret)
    (folder / "onnx").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (folder / "vocab.txt").symlink_to(tmp_path / "missing.txt")
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / "special_tokens_map.json").symlink_to(folder / ".env")
    code, _, err = push(capsys, folder, "--include", "**")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    for name in ("generation_config.json", "onnx", "vocab.txt", "special_tokens_map.json"):
        assert name in err
    assert "outside the folder" in err and "hidden" in err and "broken" in err
    assert commits(fake_api) == [] and created(fake_api) == []


def test_links_within_the_folder_upload_their_target(folder, fake_api, capsys):
    (folder / "real.md").write_text("# kart")
    (folder / "README.md").symlink_to(folder / "real.md")
    code, _, err = push(capsys, folder, "--include", "real.md")
    assert code == 0, err
    (sent,) = commits(fake_api)
    assert sent["README.md"] == sent["real.md"] == b"# kart"


def test_a_fifo_is_refused_without_being_read(folder, capsys):
    os.mkfifo(folder / "tokenizer.model")
    code, _, err = push(capsys, folder, "--dry-run")
    assert code == 1 and "tokenizer.model (not a regular file)" in err


PATH_PART = st.text(
    alphabet=st.characters(
        blacklist_characters="/\0", blacklist_categories=("Cs",), max_codepoint=0x2FFF
    ),
    min_size=1,
    max_size=8,
).filter(lambda part: part not in (".", ".."))
ALLOWED_NAMES = [p for p in ALLOWED_PATTERNS if "*" not in p]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paths=st.lists(
        st.lists(
            st.one_of(PATH_PART, st.sampled_from([".ssh", ".env", "onnx"])), min_size=1, max_size=3
        )
        | st.sampled_from(ALLOWED_NAMES).map(lambda name: [name]),
        min_size=1,
        max_size=8,
        unique_by=lambda parts: parts[0],
    )
)
def test_every_file_is_either_sent_or_accounted_for(tmp_path_factory, paths):
    root = tmp_path_factory.mktemp("plan")
    created = set()
    for parts in paths:
        path = root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        except OSError:  # a name the file system refuses, or a file where a folder was wanted
            continue
        created.add("/".join(parts))
    plan = plan_upload(root)
    sent = {name for name, _, _ in plan.files}
    hidden = {name for name in created if any(p.startswith(".") for p in name.split("/"))}
    assert sent.isdisjoint(hidden)
    assert sent <= set(ALLOWED_NAMES) | {n for n in created if n.startswith("onnx/")}
    accounted = sent | set(plan.not_allowed)
    assert created - hidden == accounted
    for name in hidden:
        assert any(name == entry or name.startswith(entry) for entry in plan.hidden)
