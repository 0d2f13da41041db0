"""The HTTP API on a served page: every endpoint against the model's own outputs, the same
results as `cli.py search --json` and the page's search (with and without an approximate
structure), bad requests answered in JSON while the server keeps serving, an index built with
another model refused alike by all three front doors, and an index updated by `cli.py index`
while the server runs: seen at the next query, never half-written."""

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from builders import exif_photo, noise_image, save_tiny_model_folder
from transformers import AutoModel, pipeline
from web_setup import corrupt_jpeg, library_logging_kept, load_for_page, serve_page

import cli
from search.photo_index import photo_id
from web import api, callbacks
from web.thumbnails import ThumbnailFiles

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["deniz.jpg", "kedi.jpg", "tatil/sahil.jpg", "tatil/gece.png", "orman.png"]


def run_cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), library_logging_kept():
        code = cli.main([str(arg) for arg in argv])
    return code, out.getvalue(), err.getvalue()


def make_library(base: Path) -> tuple[Path, Path]:
    """(model folder, photo folder): photos with EXIF dates and cameras, and without."""
    model = save_tiny_model_folder(base / "model")
    photos = base / "photos"
    exif_photo(photos / "deniz.jpg", 0, "2021:06:01 12:00:00", "NIKON CORPORATION", "NIKON D750")
    exif_photo(photos / "kedi.jpg", 1, "2022:02:02 10:00:00", "Canon", "Canon EOS R6")
    exif_photo(photos / "tatil/sahil.jpg", 2, "2023:07:15 09:30:00", "Canon", "Canon EOS R6")
    noise_image(photos / "tatil/gece.png", 3)
    noise_image(photos / "orman.png", 4)
    return model, photos


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Two indexes of the same photos, without and with an approximate structure, each served."""
    base = tmp_path_factory.mktemp("api")
    model, photos = make_library(base)
    served = {}
    for name, extra in (("exact", []), ("ann", ["--ann-threshold", 1])):
        index = base / f"{name}.index"
        # Pixels decoded in full, so that scores equal the model's own `encode_image` of a file.
        argv = ["index", photos, "--index", index, "--model", model, "--exact-decode"]
        assert run_cli(*argv, *extra)[0] == 0
        app = load_for_page(index)
        assert app.index.has_ann == (name == "ann")
        served[name] = (serve_page(app), app, index)
    yield model, photos, served
    for running, _, _ in served.values():
        running.stop()


@pytest.fixture(scope="module")
def client(site):
    running = site[2]["exact"][0]
    with httpx.Client(base_url=running.url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def reference(site):
    return AutoModel.from_pretrained(site[0], trust_remote_code=True).eval()


def still_serving(client: httpx.Client) -> None:
    response = client.post("/api/search", json={"text": "kedi", "k": 1})
    assert response.status_code == 200 and len(response.json()["results"]) == 1


# Every endpoint's success case.


def test_search_by_text_ranks_by_cosine(site, client, reference) -> None:
    photos = site[1]
    response = client.post("/api/search", json={"text": "sahilde bir köpek", "k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    names = sorted(PHOTOS)
    rows = reference.encode_image([photos / name for name in names], return_numpy=True)
    scores = rows @ reference.encode_text(["sahilde bir köpek"], return_numpy=True)[0]
    best = np.argsort(-scores)[:3]
    assert [r["path"] for r in results] == [str(photos.resolve() / names[i]) for i in best]
    assert [r["score"] for r in results] == pytest.approx(scores[best], abs=1e-5)
    assert [r["id"] for r in results] == [photo_id(names[i]) for i in best]
    assert set(results[0]) == {"id", "path", "score", "taken", "camera"}


def test_search_by_photo_id_embedding_and_upload_finds_the_photo_first(site, client) -> None:
    photos = site[1]
    by_id = client.post("/api/search", json={"image_id": photo_id("kedi.jpg"), "k": 2}).json()
    first = by_id["results"][0]
    assert first["path"] == str(photos.resolve() / "kedi.jpg")
    assert first["score"] == pytest.approx(1.0, abs=1e-4)
    assert (first["taken"], first["camera"]) == ("2022-02-02T10:00:00", "Canon EOS R6")
    row = site[2]["exact"][1].index.embedding_of(photo_id("kedi.jpg"))
    by_vector = client.post("/api/search", json={"embedding": (row * 3).tolist(), "k": 2})
    assert by_vector.json() == by_id  # normalised first
    with open(photos / "tatil/gece.png", "rb") as file:
        upload = client.post(
            "/api/search",
            files={"image": ("gece.png", file, "image/png")},
            data={"k": "2", "filters": json.dumps({"folder": "tatil"})},
        )
    assert upload.status_code == 200, upload.text
    paths = [r["path"] for r in upload.json()["results"]]
    assert paths == [str(photos.resolve() / name) for name in ("tatil/gece.png", "tatil/sahil.jpg")]


def test_classify_matches_the_pipeline(site, client) -> None:
    photo = site[1] / "kedi.jpg"
    with open(photo, "rb") as file:
        response = client.post(
            "/api/classify",
            files={"image": ("kedi.jpg", file, "image/jpeg")},
            data={"labels": json.dumps(["kedi", "köpek", "araba"])},
        )
    assert response.status_code == 200, response.text
    labels = response.json()["labels"]
    classifier = pipeline("zero-shot-image-classification", model=site[0], trust_remote_code=True)
    expected = classifier(str(photo), candidate_labels=["kedi", "köpek", "araba"])
    assert [item["label"] for item in labels] == [item["label"] for item in expected]
    assert [item["score"] for item in labels] == pytest.approx(
        [item["score"] for item in expected], abs=1e-5
    )


def test_embeddings_of_texts_and_images_are_the_models_normalised(site, client, reference) -> None:
    texts = ["kedi", "sahilde koşan bir köpek"]
    got = np.asarray(client.post("/api/embed/text", json={"texts": texts}).json()["embeddings"])
    np.testing.assert_allclose(got, reference.encode_text(texts, return_numpy=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    photos = site[1]
    files = [("images", (n, (photos / n).read_bytes())) for n in ("kedi.jpg", "orman.png")]
    response = client.post("/api/embed/image", files=files)
    got = np.asarray(response.json()["embeddings"])
    expected = reference.encode_image(
        [photos / "kedi.jpg", photos / "orman.png"], return_numpy=True
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_photo_metadata_by_id(site, client) -> None:
    photos = site[1]
    response = client.get(f"/api/photos/{photo_id('tatil/sahil.jpg')}")
    assert response.status_code == 200
    stat = (photos / "tatil/sahil.jpg").stat()
    assert response.json() == {
        "id": photo_id("tatil/sahil.jpg"),
        "path": "tatil/sahil.jpg",
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "taken": "2023-07-15T09:30:00",
        "camera": "Canon EOS R6",
    }


def test_the_openapi_page_lists_every_endpoint(client) -> None:
    schema = client.get("/api/openapi.json").json()
    assert set(schema["paths"]) == {
        "/api/search",
        "/api/classify",
        "/api/embed/text",
        "/api/embed/image",
        "/api/photos/{photo_id}",
    }
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# Bad requests: a JSON error each, and the server goes on.


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"text": "kedi", "k": NaN}', 400, "NaN is not a number JSON allows"),
        (b'["kedi"]', 400, "must be a JSON object"),
        (b'{"text": "kedi", "k": 0}', 400, "k must be at least 1"),
        (b'{"text": "kedi", "k": "5"}', 400, "k must be a whole number"),
        (b'{"text": "kedi", "k": 2.5}', 400, "k must be a whole number"),
        (b'{"text": "kedi", "k": 100000}', 400, "k must be at most 1000"),
        (b'{"text": "kedi", "min_score": "high"}', 400, "min_score must be a number"),
        (b'{"text": "kedi", "min_score": 1e999}', 400, "min_score must be a finite number"),
        (b'{"embedding": [1, 2, 3]}', 400, "embedding must have 16 numbers"),
        (b'{"embedding": "kedi"}', 400, "embedding must be a list of numbers"),
        (b'{"text": "kedi", "image_id": "x"}', 400, "exactly one of text"),
        (b'{"text": "   "}', 400, "text must be a non-empty string"),
        (b'{"text": "kedi", "filters": {"taken_after": "yesterday"}}', 400, "taken_after must be"),
        (b'{"text": "kedi", "filters": {"size": 1}}', 400, "unknown filter 'size'"),
        (b'{"text": "kedi", "colour": "red"}', 400, "unknown field 'colour'"),
        (b'{"image_id": "0123"}', 404, "no photo with id '0123'"),
    ],
)
def test_bad_search_requests_are_json_errors(client, body, status, message) -> None:
    response = client.post(
        "/api/search", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert message in response.json()["error"]
    still_serving(client)


def test_unknown_ids_routes_and_methods_are_json_errors(client) -> None:
    for method, url, status in [
        ("GET", "/api/photos/unknown", 404),
        ("GET", "/api/photos/..%2F..%2Fetc%2Fpasswd", 404),
        ("GET", "/api/nothing", 404),
        ("GET", "/api/search", 405),
        ("POST", "/api/photos/abc", 405),
    ]:
        response = client.request(method, url)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]
    plain = {"content-type": "text/plain"}
    response = client.post("/api/search", content=b"text=kedi", headers=plain)
    assert response.status_code == 415 and "JSON" in response.json()["error"]
    still_serving(client)


def test_non_images_and_bad_classify_fields_are_json_errors(tmp_path, site, client) -> None:
    photo = (site[1] / "kedi.jpg").read_bytes()
    broken = corrupt_jpeg(tmp_path / "bozuk.jpg").read_bytes()
    cases = [
        ("/api/classify", {"image": ("notlar.txt", b"not an image")}, {"labels": '["kedi"]'},
         "'notlar.txt' is not a usable image"),
        ("/api/classify", {"image": ("bozuk.jpg", broken)}, {"labels": '["kedi"]'},
         "'bozuk.jpg' is not a usable image"),
        ("/api/classify", {"image": ("kedi.jpg", photo)}, {"labels": "kedi"}, "JSON list"),
        ("/api/classify", {"image": ("kedi.jpg", photo)}, {"labels": "[]"}, "JSON list"),
        ("/api/classify", {"image": ("kedi.jpg", photo)},
         {"labels": '["kedi"]', "templates": '["no placeholder"]'}, "{}"),
        ("/api/embed/image", {"images": ("notlar.txt", b"plain text")}, {}, "not a usable image"),
        ("/api/search", {"image": ("notlar.txt", b"plain text")}, {}, "not a usable image"),
        ("/api/search", {"image": ("kedi.jpg", photo)}, {"k": "many"}, "k must be a number"),
    ]  # fmt: skip
    for url, files, data, message in cases:
        response = client.post(url, files=files, data=data)
        assert response.status_code == 400, (url, data, response.text)
        assert message in response.json()["error"]
    for body in ({"texts": []}, {"texts": ["kedi", 3]}, {"texts": "kedi"}, {"words": ["x"]}):
        response = client.post("/api/embed/text", json=body)
        assert response.status_code == 400
        assert "texts must be" in response.json()["error"] or "'words'" in response.json()["error"]
    still_serving(client)


def test_oversized_bodies_and_uploads_are_refused_with_413(client, monkeypatch) -> None:
    big_json = json.dumps({"texts": ["kedi " * 50] * 5000}).encode()
    assert len(big_json) > api.MAX_JSON_BYTES
    response = client.post(
        "/api/embed/text", content=big_json, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "limit" in response.json()["error"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(200):
            yield b" " * 10_000

    response = client.post(
        "/api/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    monkeypatch.setattr(api, "MAX_IMAGE_BYTES", 1000)
    response = client.post("/api/embed/image", files={"images": ("big.png", b"x" * 5000)})
    assert response.status_code == 413 and "'big.png'" in response.json()["error"]
    too_many = {"texts": ["kedi"] * (api.MAX_TEXTS + 1)}
    assert client.post("/api/embed/text", json=too_many).status_code == 413
    still_serving(client)


# The same results from every front door.


@pytest.mark.parametrize("kind", ["exact", "ann"])
@pytest.mark.parametrize(
    ("query", "filters", "min_score"),
    [
        ("sahilde bir köpek", {}, None),
        ("kedi", {"camera": "canon"}, None),
        ("gece", {"folder": "tatil", "type": "png"}, None),
        ("deniz", {"taken_after": "2022-01-01", "taken_before": "2023-12-31"}, None),
        ("orman", {}, 0.0),
    ],
)
def test_command_line_page_and_api_give_the_same_ranked_scores(
    site, kind, query, filters, min_score
) -> None:
    running, app, index = site[2][kind]
    if min_score is not None:  # a threshold between the second and third result
        scores = [r["score"] for r in api.search_photos(app, {"text": query, "k": 5})["results"]]
        min_score = (scores[1] + scores[2]) / 2
    argv = ["search", query, "--index", index, "--top-k", 4, "--json"]
    for name, value in filters.items():
        argv += [f"--{name.replace('_', '-')}", value]
    if min_score is not None:
        argv += ["--min-score", repr(min_score)]
    code, out, err = run_cli(*argv)
    assert code == 0, err
    command_line = [json.loads(line) for line in out.splitlines()]
    body = {"text": query, "k": 4, "filters": filters, "min_score": min_score}
    with httpx.Client(base_url=running.url, timeout=60) as session:
        answer = session.post("/api/search", json=body).json()["results"]
    files = ThumbnailFiles(app.index, app.max_pixels)
    items, ids, message = callbacks.search_text(
        app, files, query, 4, "", filters, -1 if min_score is None else min_score
    )
    assert message == "" and command_line  # something to compare
    root = app.index.root
    shown = [caption.split(" · ", 1) for _, caption in items]
    page = [(str(root / path), float(score)) for score, path in shown]
    assert [r["path"] for r in answer] == [r["path"] for r in command_line] == [p for p, _ in page]
    assert [r["score"] for r in answer] == [r["score"] for r in command_line]
    assert [r["id"] for r in answer] == [r["id"] for r in command_line] == ids
    assert [round(r["score"], 4) for r in answer] == pytest.approx([s for _, s in page], abs=1e-4)
    for fields in command_line:
        assert {"taken", "camera"} <= set(fields)
    if min_score is not None:
        assert len(answer) == 2


# Live updates.


def test_an_update_by_the_command_line_is_seen_at_the_next_query(tmp_path) -> None:
    model, photos = make_library(tmp_path)
    index = tmp_path / "live.index"
    assert run_cli("index", photos, "--index", index, "--model", model)[0] == 0
    running = serve_page(load_for_page(index))
    try:
        with httpx.Client(base_url=running.url, timeout=60) as session:
            before = session.post("/api/search", json={"text": "kedi", "k": 50}).json()
            assert len(before["results"]) == len(PHOTOS)
            exif_photo(photos / "yeni/kar.jpg", 40, "2025:01:05 08:00:00", "Sony", "ILCE-7M3")
            update = subprocess.run(
                [sys.executable, str(ROOT / "cli.py"), "index", str(photos), "--index", str(index),
                 "-q"],
                capture_output=True, text=True, timeout=300, cwd=ROOT,
            )  # fmt: skip
            assert update.returncode == 0, update.stderr
            after = session.post("/api/search", json={"text": "kedi", "k": 50}).json()["results"]
            assert len(after) == len(PHOTOS) + 1
            new = photo_id("yeni/kar.jpg")
            assert new in [r["id"] for r in after]
            found = session.post("/api/search", json={"text": "kar", "filters": {"camera": "sony"}})
            assert [r["id"] for r in found.json()["results"]] == [new]
            assert session.get(f"/thumbnail/{new}").status_code == 200
            assert session.get(f"/api/photos/{new}").json()["camera"] == "Sony ILCE-7M3"
    finally:
        running.stop()


def test_queries_during_command_line_updates_see_the_old_or_the_new_index(tmp_path) -> None:
    """`cli.py index` runs in another process, adding photos, while threads query the server."""
    model, photos = make_library(tmp_path)
    index = tmp_path / "busy.index"
    argv = ["index", photos, "--index", index, "--model", model, "--exact-decode"]
    assert run_cli(*argv)[0] == 0
    added = [f"ek/foto{number}.png" for number in range(4)]
    generations = [set(PHOTOS)]
    for name in added:
        generations.append(generations[-1] | {name})
    script = (
        "import sys, subprocess\n"
        "from pathlib import Path\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests']\n"
        "from builders import noise_image\n"
        "for number in range(4):\n"
        "    noise_image(Path(sys.argv[2]) / 'ek' / f'foto{number}.png', 60 + number)\n"
        "    subprocess.run([sys.executable, sys.argv[1] + '/cli.py', 'index', sys.argv[2],\n"
        "                    '--index', sys.argv[3], '-q', '--exact-decode'], check=True)\n"
    )
    running = serve_page(load_for_page(index))
    answers, errors = [], []
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", script, str(ROOT), str(photos), str(index)],
            stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip

        def ask() -> None:
            with httpx.Client(base_url=running.url, timeout=60) as session:
                while writer.poll() is None:
                    response = session.post("/api/search", json={"text": "kedi", "k": 50})
                    if response.status_code != 200:
                        errors.append(response.text)
                    else:
                        answers.append(response.json()["results"])

        readers = [threading.Thread(target=ask) for _ in range(3)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(300)
        assert writer.wait(300) == 0, writer.stderr.read()
        with httpx.Client(base_url=running.url, timeout=60) as session:
            last = session.post("/api/search", json={"text": "kedi", "k": 50})
            answers.append(last.json()["results"])
    finally:
        running.stop()
    assert errors == []
    reference = AutoModel.from_pretrained(model, trust_remote_code=True).eval()
    names = sorted(generations[-1])
    text = reference.encode_text(["kedi"], return_numpy=True)[0]
    rows = reference.encode_image([photos / n for n in names], return_numpy=True)
    own = dict(zip(names, rows @ text))
    root = str(photos.resolve()) + "/"
    for results in answers:
        paths = {r["path"].removeprefix(root) for r in results}
        assert paths in generations  # the old index or the new one, never a mix
        for r in results:
            assert r["score"] == pytest.approx(float(own[r["path"].removeprefix(root)]), abs=1e-5)
    assert {r["path"].removeprefix(root) for r in answers[-1]} == generations[-1]


# Another model's index.


def test_an_index_of_another_model_is_refused_alike_by_every_front_door(tmp_path) -> None:
    model, photos = make_library(tmp_path)
    other = save_tiny_model_folder(tmp_path / "other", seed=5)
    index = tmp_path / "shared.index"
    assert run_cli("index", photos, "--index", index, "--model", model)[0] == 0
    app = load_for_page(index)
    running = serve_page(app)
    try:
        # The index is rebuilt with another model while the page runs.
        argv = ["index", photos, "--index", index, "--model", other, "--reembed"]
        assert run_cli(*argv)[0] == 0
        # By content: the rows are now another image tower's, whatever the models are called.
        expected = (
            f"the model's image tower (its weights, projection or settings) differ from those "
            f"index {index} was built with (model '{other.resolve()}')"
        )
        code, out, err = run_cli("search", "kedi", "--index", index, "--model", model)
        assert (code, out) == (1, "") and err.startswith(f"error: {expected}")
        with httpx.Client(base_url=running.url, timeout=60) as session:
            response = session.post("/api/search", json={"text": "kedi"})
        assert response.status_code == 409 and response.json()["error"].startswith(expected)
        files = ThumbnailFiles(app.index, app.max_pixels)
        items, ids, message = callbacks.search_text(app, files, "kedi", 3, "")
        assert (items, ids) == ([], []) and message.startswith(f"**Error:** {expected}")
    finally:
        running.stop()


def test_a_name_that_is_not_utf8_comes_back_with_its_bytes(tmp_path) -> None:
    import base64

    model, photos = make_library(tmp_path)
    raw = "çiçek".encode("cp857") + b".png"
    noise_image(Path(os.fsdecode(os.path.join(os.fsencode(photos), raw))), 9)
    index = tmp_path / "names.index"
    assert run_cli("index", photos, "--index", index, "--model", model)[0] == 0
    running = serve_page(load_for_page(index))
    try:
        with httpx.Client(base_url=running.url, timeout=60) as session:
            results = session.post("/api/search", json={"text": "çiçek", "k": 50}).json()
            [odd] = [r for r in results["results"] if "path_bytes" in r]
            assert base64.b64decode(odd["path_bytes"]) == os.fsencode(photos.resolve()) + b"/" + raw
            stored = session.get(f"/api/photos/{odd['id']}").json()
            assert base64.b64decode(stored["path_bytes"]) == raw
    finally:
        running.stop()
