"""The page's Gradio API as its "Use via API" footer shows it: gradio_client with default
settings against a running page, results downloaded (thumbnails included), uploads cleaned up
after use, and previews of large photos decoded reduced."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin
from web_setup import PHOTOS, indexed_folder, load_for_page, noise_image, serve_page

from web import callbacks
from web.thumbnails import THUMBNAIL_SIZE, ThumbnailFiles, thumbnail_id
from web.uploads import MAX_KEPT_UPLOADS


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served page whose Gradio upload folder is a folder of this test's own."""
    base = tmp_path_factory.mktemp("client")
    uploads = base / "gradio-uploads"
    before = os.environ.get("GRADIO_TEMP_DIR")
    # Gradio reads it when the page is built and again at every upload: kept for the module.
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)
    _, photos, index = indexed_folder(base)
    app = load_for_page(index)
    running = serve_page(app)
    yield running, app, photos, uploads, base
    running.stop()
    if before is None:
        os.environ.pop("GRADIO_TEMP_DIR")
    else:
        os.environ["GRADIO_TEMP_DIR"] = before


@pytest.fixture(scope="module")
def client(site):
    from gradio_client import Client

    return Client(site[0].url, verbose=False)  # default settings: files are downloaded


def caption_paths(items: list[dict]) -> list[str]:
    return [item["caption"].split(" · ", 1)[1] for item in items]


def test_text_search_as_the_footer_shows_it(site, client) -> None:
    running, app, _, _, _ = site
    items, message = client.predict(
        query="sahilde bir köpek",
        k=3,
        taken_after="",
        taken_before="",
        camera="",
        folder="",
        file_type="",
        min_score=-1,
        api_name="/by_text",
    )
    files = ThumbnailFiles(app.index, app.max_pixels)
    expected, _, _ = callbacks.search_text(app, files, "sahilde bir köpek", 3, running.url)
    assert message == "" and [item["caption"] for item in items] == [c for _, c in expected]
    for item in items:  # each thumbnail downloaded: a small JPEG
        with Image.open(item["image"]) as thumbnail:
            assert thumbnail.format == "JPEG" and max(thumbnail.size) <= THUMBNAIL_SIZE


def test_duplicates_and_classify_endpoints(site, client) -> None:
    from gradio_client import handle_file

    _, _, photos, _, _ = site
    items, summary = client.predict(threshold=0.5, api_name="/duplicates")
    assert "groups of near-duplicates at threshold 0.5" in summary
    assert items and {item["caption"].split(" · ")[2] for item in items} <= set(PHOTOS)
    for item in items:
        assert Image.open(item["image"]).format == "JPEG"
    probs, message = client.predict(
        handle_file(photos / "kedi.jpg"),
        "kedi, köpek",
        callbacks.DEFAULT_CHOICE,
        api_name="/classify",
    )
    assert message == "" and {c["label"] for c in probs["confidences"]} == {"kedi", "köpek"}
    preview, message = client.predict(handle_file(photos / "kedi.jpg"), api_name="/preview")
    assert message == "" and Image.open(preview).size == (48, 40)


def test_similar_upload_finds_itself(site, client) -> None:
    from gradio_client import handle_file

    _, _, photos, _, _ = site
    items, message = client.predict(
        handle_file(photos / "tatil" / "sahil.png"),
        2,
        "",
        "",
        "",
        "",
        "",
        -1,
        api_name="/by_upload",
    )
    assert message == "" and caption_paths(items)[0] == "tatil/sahil.png"


def test_a_url_of_another_host_is_not_served_as_a_thumbnail(site) -> None:
    """The page answers Gradio's file route only for its own thumbnail URLs."""
    import httpx

    running, _, photos, _, _ = site
    listed = running.url + "/thumbnail/" + thumbnail_id("kedi.jpg")
    with httpx.Client(base_url=running.url + "/gradio_api/", timeout=30) as http:
        assert http.get("file=" + listed).content.startswith(b"\xff\xd8\xff")  # a JPEG
        for target, status in [
            (running.url + "/thumbnail/..%2F..%2Fphotos%2Fkedi.jpg", 404),
            (running.url + "/thumbnail/" + str(photos / "kedi.jpg"), 404),
            ("http://127.0.0.2:9/thumbnail/" + thumbnail_id("kedi.jpg"), 403),  # Gradio's refusal
        ]:
            response = http.get("file=" + target)
            assert response.status_code == status and b"\xff\xd8\xff" not in response.content


def test_uploads_do_not_accumulate(site, client) -> None:
    """Real uploads through the server: only the last few used stay on disk."""
    from gradio_client import handle_file

    _, _, _, uploads, base = site
    sent = base / "sent"
    count = MAX_KEPT_UPLOADS + 12
    for number in range(count):
        photo = noise_image(sent / f"upload-{number}.png", 100 + number)
        if number % 2:
            client.predict(handle_file(photo), api_name="/preview")
        else:
            client.predict(
                handle_file(photo), "kedi", callbacks.DEFAULT_CHOICE, api_name="/classify"
            )
    kept = [path for path in uploads.rglob("upload-*.png")]
    assert 1 <= len(kept) <= MAX_KEPT_UPLOADS
    largest = max(path.stat().st_size for path in sent.iterdir())
    assert sum(path.stat().st_size for path in kept) <= MAX_KEPT_UPLOADS * largest
    assert {path.name for path in kept} <= {
        f"upload-{n}.png" for n in range(count - MAX_KEPT_UPLOADS, count)
    }


@pytest.fixture
def decoded_sizes(monkeypatch) -> list[tuple[int, int]]:
    """The size every JPEG is decoded at (after any draft), in order."""
    sizes: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.load

    def load(self):
        sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    return sizes


def large_jpeg(path: Path, size: tuple[int, int] = (4000, 3000)) -> Path:
    width, height = size
    pixels = np.random.default_rng(0).integers(0, 256, (height // 8, width // 8, 3), np.uint8)
    Image.fromarray(pixels).resize(size).save(path, quality=90)
    return path


def test_preview_of_a_large_jpeg_is_decoded_reduced(tmp_path, site, decoded_sizes) -> None:
    app = site[1]
    photo = large_jpeg(tmp_path / "buyuk.jpg")
    preview, message = callbacks.preview_upload(app, str(photo), tmp_path)
    assert message == "" and max(preview.size) == callbacks.PREVIEW_SIZE
    # 1/4 of 4000x3000: the smallest DCT scale that keeps the short side >= 512.
    assert decoded_sizes and max(decoded_sizes) == (1000, 750)


def test_the_footer_lists_the_endpoints_that_work(client) -> None:
    """A gallery click (similar photos) needs the page; the HTTP API's image_id does it."""
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(endpoints) == {"/by_text", "/by_upload", "/duplicates", "/classify", "/preview"}


def test_files_the_page_made_are_swept_once_old_and_examples_stay(tmp_path, monkeypatch) -> None:
    """Gradio keeps every upload and preview until the server stops, unless swept by age: an
    upload that no button ever uses (a client's /upload alone) is gone too. Examples stay."""
    from gradio_client import Client, handle_file

    from web import page

    monkeypatch.setattr(page, "CACHE_SWEEP", (1, 1))  # every second, files over a second old
    uploads = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    _, photos, index = indexed_folder(tmp_path)
    running = serve_page(load_for_page(index), examples=[photos / "kedi.jpg"])
    try:
        examples = {path for path in uploads.rglob("*") if path.is_file()}
        assert examples  # Gradio's copies of the example
        # The client downloads into GRADIO_TEMP_DIR too unless told otherwise: elsewhere here.
        client = Client(running.url, verbose=False, download_files=str(tmp_path / "downloads"))
        client.predict(handle_file(photos / "deniz.png"), api_name="/preview")

        def holding_bytes() -> set[Path]:
            # Gradio's upload parser also leaves an empty temporary file per upload, untracked.
            files = {path for path in uploads.rglob("*") if path.is_file()} - examples
            return {path for path in files if path.stat().st_size > 0}

        assert len(holding_bytes()) >= 2  # the upload and its preview
        deadline = time.monotonic() + 20
        while holding_bytes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not holding_bytes()
        assert all(path.exists() for path in examples)
        _, message = client.predict(handle_file(photos / "deniz.png"), api_name="/preview")
        assert message == ""  # and the page goes on serving
    finally:
        running.stop()
