"""The web page's logic without a browser: loading rules, search and classification against the
model's own outputs, upload errors, the thumbnail allow-list over raw HTTP, and the command."""

import io
import json
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from builders import save_tiny_model_folder
from PIL import Image
from transformers import AutoModel, pipeline
from web_setup import (
    PHOTOS,
    corrupt_jpeg,
    indexed_folder,
    library_logging_kept,
    load_for_page,
    noise_image,
    serve_page,
)

import app as app_command
from search.errors import NoIndexError
from search.fingerprint import ModelMismatchError
from search.image_index import load_index
from web import callbacks
from web.engine import AppInputError, describe_age, index_summary, load_app_model
from web.errors import describe
from web.page import about_text
from web.thumbnails import THUMBNAIL_SIZE, ThumbnailFiles, ThumbnailRefused, thumbnail_id

BASE = "http://127.0.0.1:1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return indexed_folder(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def page_model(setup):
    return load_for_page(setup[2])


@pytest.fixture(scope="module")
def reference(setup):
    """The same model folder loaded independently, as the command line would."""
    return AutoModel.from_pretrained(setup[0], trust_remote_code=True).eval()


@pytest.fixture(scope="module")
def files(page_model) -> ThumbnailFiles:
    return ThumbnailFiles(page_model.index, page_model.max_pixels)


def paths_of(items: list[tuple[str, str]]) -> list[str]:
    return [caption.split(" · ", 1)[1] for _, caption in items]


def scores_of(items: list[tuple[str, str]]) -> list[float]:
    return [float(caption.split(" · ", 1)[0]) for _, caption in items]


# Loading.


def test_loads_the_index_model_and_refuses_another(tmp_path, setup, page_model) -> None:
    model_dir, _, index = setup
    assert page_model.source == str(model_dir.resolve())
    other = save_tiny_model_folder(tmp_path / "other", seed=1)
    with pytest.raises(ModelMismatchError, match="image tower") as refused:
        load_app_model(str(other), None, index)
    assert "without --model" in describe(refused.value)  # the page's own words
    moved = shutil.copytree(model_dir, tmp_path / "moved")  # the same model elsewhere: accepted
    assert load_app_model(str(moved), None, index).source == str(moved.resolve())
    with pytest.raises(NoIndexError, match="no index in"):
        load_app_model(str(model_dir), None, tmp_path / "missing.index")


def test_without_an_index_the_named_model_loads(setup) -> None:
    loaded = load_app_model(str(setup[0]), None, None)
    assert loaded.index is None and loaded.source == str(setup[0].resolve())


# Search.


def test_text_search_ranks_as_the_model_embeds(page_model, reference, files) -> None:
    items, rows, message = callbacks.search_text(page_model, files, " sahilde bir köpek ", 3, BASE)
    assert message == ""
    query = reference.encode_text(["sahilde bir köpek"], return_numpy=True)[0]
    index = load_index(page_model.index_folder)
    scores = index.embeddings @ query
    expected = np.argsort(-scores, kind="stable")[:3]
    assert rows == [thumbnail_id(index.files[row]["path"]) for row in expected]
    assert paths_of(items) == [index.files[row]["path"] for row in expected]
    assert scores_of(items) == pytest.approx(scores[expected], abs=1e-4)
    assert items[0][0] == BASE + "/thumbnail/" + thumbnail_id(index.files[expected[0]]["path"])


def test_uploaded_photo_finds_itself_first(setup, page_model, files) -> None:
    photo = setup[1] / "tatil" / "şehir gece.jpg"
    items, rows, message = callbacks.search_upload(page_model, files, str(photo), setup[1], 2, BASE)
    assert message == "" and len(items) == 2
    assert paths_of(items)[0] == "tatil/şehir gece.jpg"
    assert scores_of(items)[0] == pytest.approx(1.0, abs=1e-3)


def test_clicking_a_result_searches_for_images_like_it(page_model, files) -> None:
    _, shown, _ = callbacks.search_text(page_model, files, "orman", 5, BASE)
    items, rows, message = callbacks.search_like(page_model, files, shown, 3, 5, BASE)
    assert message == "" and rows[0] == shown[3]
    assert scores_of(items)[0] == pytest.approx(1.0, abs=1e-4)
    assert callbacks.search_like(page_model, files, shown, 9, 5, BASE)[2].startswith("**Error:**")


@pytest.mark.parametrize(
    "query, top_k, error",
    [("   ", 5, "type what to look for"), ("kedi", 0, "at least 1"), ("kedi", None, "number")],
)
def test_bad_search_input_is_a_message(page_model, files, query, top_k, error) -> None:
    items, rows, message = callbacks.search_text(page_model, files, query, top_k, BASE)
    assert (items, rows) == ([], []) and message.startswith("**Error:**") and error in message


def test_top_k_is_capped_at_the_index_size(page_model, files) -> None:
    items, _, _ = callbacks.search_text(page_model, files, "kedi", 100, BASE)
    assert sorted(paths_of(items)) == sorted(PHOTOS)


# Classification.


@pytest.mark.parametrize("choice", [callbacks.DEFAULT_CHOICE, callbacks.ENSEMBLE_CHOICE])
def test_classify_matches_the_pipeline(setup, page_model, choice) -> None:
    from turkish_clip import DEFAULT_TEMPLATE, TURKISH_TEMPLATES

    photo = setup[1] / "kedi.jpg"
    labels = "kedi, köpek ,araba"
    probs, message = callbacks.classify_upload(page_model, str(photo), setup[1], labels, choice)
    assert message == "" and list(probs) == ["kedi", "köpek", "araba"]
    classifier = pipeline("zero-shot-image-classification", model=setup[0], trust_remote_code=True)
    template = list(TURKISH_TEMPLATES) if choice == callbacks.ENSEMBLE_CHOICE else DEFAULT_TEMPLATE
    expected = classifier(
        str(photo), candidate_labels=["kedi", "köpek", "araba"], hypothesis_template=template
    )
    assert {item["label"]: item["score"] for item in expected} == pytest.approx(probs, abs=1e-5)


def test_labels_are_trimmed_and_deduplicated() -> None:
    assert callbacks.parse_labels(" kedi,köpek,, kedi ,İstanbul ") == ["kedi", "köpek", "İstanbul"]
    with pytest.raises(AppInputError, match="at least one label"):
        callbacks.parse_labels(" , ,")


def test_corrupt_upload_is_a_message_naming_the_file(tmp_path, page_model) -> None:
    (tmp_path / "gradio-cache-123").mkdir()
    upload = corrupt_jpeg(tmp_path / "gradio-cache-123" / "bozuk.jpg")
    probs, message = callbacks.classify_upload(page_model, str(upload), tmp_path, "kedi", None)
    assert probs is None
    assert message.startswith("**Error:** 'bozuk.jpg' is truncated or corrupt")
    assert str(tmp_path) not in message
    items, _, search_message = callbacks.search_upload(
        page_model, None, str(upload), tmp_path, 3, BASE
    )
    assert items == [] and "'bozuk.jpg' is truncated or corrupt" in search_message


def test_decompression_bomb_upload_is_refused_before_decoding(tmp_path, page_model) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(bomb)  # 100 MP, a few kilobytes on disk
    assert bomb.stat().st_size < 100_000
    probs, message = callbacks.classify_upload(page_model, str(bomb), tmp_path, "kedi", None)
    assert probs is None and "'bomb.png' is 10000x10000 = 100,000,000 pixels" in message
    assert callbacks.preview_upload(page_model, str(bomb), tmp_path)[0] is None


def test_missing_upload_and_bad_labels_are_messages(setup, page_model) -> None:
    photos = setup[1]
    assert callbacks.classify_upload(page_model, None, photos, "kedi", None) == (
        None,
        "**Error:** upload a photo first",
    )
    photo = str(photos / "kedi.jpg")
    _, message = callbacks.classify_upload(page_model, photo, photos, "kedi", "another")
    assert message == "**Error:** unknown template choice 'another'"


def test_only_files_in_the_upload_folder_are_opened(tmp_path, page_model, files) -> None:
    """Gradio's API accepts any server path as a file input; the callbacks refuse it."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    photo = noise_image(tmp_path / "kedi.jpg", 5)
    outside = [str(photo), str(uploads / ".." / "kedi.jpg")]
    for path in outside:
        image, message = callbacks.preview_upload(page_model, path, uploads)
        assert (
            image is None and message == "**Error:** 'kedi.jpg' was not uploaded through the page"
        )
        assert callbacks.classify_upload(page_model, path, uploads, "kedi", None)[0] is None
        assert callbacks.search_upload(page_model, files, path, uploads, 3, BASE)[0] == []
    (uploads / "link.jpg").symlink_to(photo)
    assert callbacks.preview_upload(page_model, str(uploads / "link.jpg"), uploads)[0] is None


# Concurrency.


def test_concurrent_requests_share_one_model_one_call_at_a_time(page_model, files) -> None:
    """Requests from several tabs give the results they give alone, and never run the model at
    the same time (transformers modules and the label cache are not thread-safe)."""
    queries = ["kedi", "deniz kenarı", "orman", "gece şehir"] * 3
    alone = [callbacks.search_text(page_model, files, q, 3, BASE) for q in queries]
    model = page_model.model
    running, most = [0], [0]
    original = model.encode_text

    def watched(*args, **kwargs):
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.01)  # widen the window in which an unlocked call would overlap
        try:
            return original(*args, **kwargs)
        finally:
            running[0] -= 1

    results = [None] * len(queries)

    def ask(i: int) -> None:
        results[i] = callbacks.search_text(page_model, files, queries[i], 3, BASE)

    model.encode_text = watched
    try:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(queries))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        del model.encode_text
    assert most[0] == 1
    assert [r[1] for r in results] == [a[1] for a in alone]


# Thumbnails and the allow-list.


def test_thumbnail_is_a_small_jpeg_of_the_listed_file(setup, files) -> None:
    data = files.jpeg(thumbnail_id("tatil/şehir gece.jpg"))
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and max(image.size) <= THUMBNAIL_SIZE
    original = np.asarray(Image.open(setup[1] / "tatil" / "şehir gece.jpg").convert("RGB"))
    assert np.abs(np.asarray(image, np.float32) - original).mean() < 40  # the same picture
    with pytest.raises(ThumbnailRefused) as refused:
        files.jpeg("tatil/şehir gece.jpg")  # a path is not an id
    assert refused.value.status == 404


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A page on its own photo folder, which the tests then change under it."""
    base = tmp_path_factory.mktemp("served")
    names = ["keep.png", "gone.png", "link.png", "sub/inner.png"]
    _, photos, index = indexed_folder(base, names)
    secret = noise_image(base / "secret.png", 99)
    (base / "secret.txt").write_text("SECRET-CONTENT-1234")
    (photos / "gone.png").unlink()
    (photos / "link.png").unlink()
    (photos / "link.png").symlink_to(secret)
    running = serve_page(load_for_page(index))
    yield running, photos, base
    running.stop()


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Sends the request line exactly as written: no client-side normalisation of '..'."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_listed_file_is_served(served) -> None:
    running, photos, _ = served
    status, body = raw_get(running.url, f"/thumbnail/{thumbnail_id('sub/inner.png')}")
    assert status == 200 and body.startswith(b"\xff\xd8\xff")  # a JPEG


@pytest.mark.parametrize(
    "target, status",
    [
        ("/thumbnail/../../secret.txt", 404),
        ("/thumbnail/..%2F..%2Fsecret.txt", 404),
        ("/thumbnail/%2e%2e/%2e%2e/secret.png", 404),
        ("/thumbnail/{secret}", 404),  # an absolute path
        ("/thumbnail/{photo}", 404),  # a listed file by path instead of id
        ("/thumbnail/keep.png", 404),
        ("/thumbnail/{gone}", 404),  # deleted since indexing
        ("/thumbnail/{link}", 403),  # now a symlink out of the root
        ("/gradio_api/file={secret}", 403),  # Gradio's own file route
        ("/gradio_api/file={photo}", 403),
    ],
)
def test_other_paths_get_no_content(served, target, status) -> None:
    running, photos, base = served
    target = target.format(
        secret=base / "secret.png",
        photo=photos / "keep.png",
        gone=thumbnail_id("gone.png"),
        link=thumbnail_id("link.png"),
    )
    got, body = raw_get(running.url, target)
    assert got == status
    secret_png = (base / "secret.png").read_bytes()
    assert b"SECRET-CONTENT" not in body and secret_png[:64] not in body
    assert b"\xff\xd8\xff" not in body and b"\x89PNG" not in body
    if target.startswith("/thumbnail/"):
        assert body == b""


def test_thumbnails_from_several_threads_are_complete(served) -> None:
    """The thumbnail route under load from several threads: every answer complete and equal."""
    import urllib.request

    url = f"{served[0].url}/thumbnail/{thumbnail_id('keep.png')}"
    bodies, errors = [], []

    def fetch() -> None:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                bodies.append(response.read())
        except Exception as error:  # collected and reported below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(bodies)) == 1


def test_gradio_api_cannot_read_server_files(served) -> None:
    """A client naming a server path as the upload gets an error, not a copy of the file."""
    running, photos, _ = served
    payload = {"path": str(photos / "keep.png"), "meta": {"_type": "gradio.FileData"}}
    request = urllib.request.Request(
        f"{running.url}/gradio_api/call/preview",
        data=json.dumps({"data": [payload]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{running.url}/gradio_api/call/preview/{event}") as response:
        stream = response.read().decode()
    assert stream.startswith("event: error") and "it was not uploaded by a user" in stream
    assert "gradio_api/file=" not in stream  # no copy of the file to fetch


# About.


def test_about_names_model_revision_and_index(setup, page_model) -> None:
    text = about_text(page_model)
    assert str(setup[0].resolve()) in text and f"**Indexed images:** {len(PHOTOS)} " in text
    assert "just now" in text or "minute" in text
    summary = index_summary(page_model, now=time.time() + 3 * 86400)
    assert summary["age"] == "3 days ago" and summary["root"] == str(setup[1].resolve())
    assert describe_age(3600) == "1 hour ago"


# The command.


def test_command_refuses_another_model_in_one_line(capsys, tmp_path, setup) -> None:
    other = save_tiny_model_folder(tmp_path / "other", seed=2)
    capsys.readouterr()
    code = app_command.main(["--index", str(setup[2]), "--model", str(other), "--port", "0"])
    err = capsys.readouterr().err
    # The model is loaded before its content is compared: the library's loading bar may precede.
    last = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert code == 1 and last.startswith("error: the model's image tower")
    assert "--reembed" in last and err.count("error") == 1


def test_command_refuses_a_missing_index_and_a_busy_port(capsys, tmp_path, setup) -> None:
    assert app_command.main(["--index", str(tmp_path / "nothing")]) == 1
    assert "error: no index in" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = app_command.main(["--index", str(setup[2]), "--port", str(port)])
    assert code == 1 and f"error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_command_listens_on_localhost_by_default(monkeypatch) -> None:
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = app_command.build_parser().parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)


def test_original_demo_photos_are_the_default_examples(shared_dir) -> None:
    images = shared_dir / "images"
    assert app_command.demo_photos(None) == [images / "myspc.jpeg", images / "mysdk.jpeg"]


def test_demo_photos_are_found_where_present(tmp_path) -> None:
    assert app_command.demo_photos(tmp_path) == []
    shutil.copy(__file__, tmp_path / "myspc.jpeg")
    assert app_command.demo_photos(tmp_path) == [tmp_path / "myspc.jpeg"]


def test_command_serves_search_classify_and_about(capsys, monkeypatch, setup) -> None:
    """main() loads, binds 127.0.0.1 and hands the page to uvicorn; served here in a thread."""
    import urllib.request

    from web_setup import start_on

    from web import server

    handed = {}
    monkeypatch.setattr(server, "serve", lambda app, sock: handed.update(app=app, sock=sock))
    assert app_command.main(["--index", str(setup[2]), "--port", "0"]) == 0
    host, port = handed["sock"].getsockname()[:2]
    assert host == "127.0.0.1"
    assert f"Turkish CLIP page on http://127.0.0.1:{port}" in capsys.readouterr().out
    running = start_on(handed["app"], handed["sock"])
    try:
        with urllib.request.urlopen(running.url + "/config", timeout=30) as response:
            config = json.loads(response.read())
    finally:
        running.stop()
    tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Search", "Duplicates", "Classify", "About"]


def test_library_logging_is_left_as_found() -> None:
    import transformers.utils.logging

    before = transformers.utils.logging.get_verbosity()
    with library_logging_kept():
        transformers.utils.logging.set_verbosity_error()
    assert transformers.utils.logging.get_verbosity() == before
