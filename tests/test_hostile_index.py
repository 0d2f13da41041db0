"""The index under hostile conditions: odd file names, two writers at once, user files in the
index folder, hand-edited or forged index files, a model replaced in place, transient read
errors, linked folders and loops, huge photos, old index versions.

Every test runs the tiny random model; embeddings are checked against the model's own
`encode_image`.
"""

import base64
import errno
import json
import os
import shutil
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from builders import (
    noise_image,
    save_tiny_model_folder,
    tiny_model,
    tiny_processor,
    tiny_student,
    without_backend_note,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from inference.loading import ModelSpec
from search import embedding, image_index, updating, validation
from search.image_index import load_index, save_index
from search.locking import IndexBusyError

# Names the old reader split into several lines, and a Turkish name zipped as cp857.
SEPARATOR_NAMES = ["satır\u2028ayırıcı.png", "paragraf\u2029.png", "üç\x85nokta.png"]
# Each example cleans the folders it uses, so reusing tmp_path across examples is safe.
FIXTURE_REUSE = HealthCheck.function_scoped_fixture
CP857_NAME = "çiçek_ağacı".encode("cp857") + b".png"


pytestmark = pytest.mark.usefixtures("restore_library_logging")


@pytest.fixture(scope="module")
def model():
    model = tiny_model()
    model.processor = tiny_processor()
    return model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return save_tiny_model_folder(tmp_path / "model")


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


class CallEngine:
    """An engine that embeds with a given function: another engine, as a service could bring."""

    def __init__(self, embed):
        self.embed_files = embed

    def embed(self, model, spec, paths, index_folder, progress, warn):
        return self.embed_files(model, paths)

    def finish(self, index_folder: Path) -> None:
        pass


def update(folder: Path, root: Path, model, **options) -> updating.UpdateSummary:
    """update_index with an in-memory model, as another engine or a service would call it."""
    warnings = options.pop("warnings", [])
    embed = options.pop(
        "embed", lambda m, paths: embedding.embed_images(m, paths, 4, warn=warnings.append)
    )
    warn = options.pop("warn", warnings.append)
    return updating.update_index(
        folder,
        root,
        ModelSpec("tiny"),
        CallEngine(embed),
        model=model,
        warn=warn,
        **options,
    )


def assert_rows_match_files(folder: Path, root: Path, model) -> list[str]:
    """Every row is the model's embedding of the file its entry names, on whichever image path
    (float32, or int8 where `index` chose it: within a cosine of 0.999); returns the names."""
    index = load_index(folder)
    names = [entry["path"] for entry in index.files]
    if names:
        expected = model.encode_image([root / name for name in names], return_numpy=True)
        cosines = index.embeddings @ expected.T
        assert (cosines.argmax(axis=1) == np.arange(len(names))).all()
        assert np.diag(cosines).min() > 0.999
    return names


def fsname(folder: Path, raw: bytes) -> Path:
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), raw)))


# 1. One home: the update runs without the command line.


def test_update_index_builds_and_updates_an_index_on_its_own(tmp_path, model) -> None:
    root = tmp_path / "photos"
    for seed, name in enumerate(["a.png", "sub/b.png"]):
        noise_image(root / name, seed)
    summary = update(tmp_path / "index", root, model)
    assert (summary.images, summary.added) == (2, 2)
    noise_image(root / "c.png", 5)
    summary = update(tmp_path / "index", root, model)
    assert (summary.added, summary.unchanged) == (1, 2)
    assert assert_rows_match_files(tmp_path / "index", root, model) == [
        "a.png",
        "c.png",
        "sub/b.png",
    ]


# 2. One writer at a time.


def test_two_writers_take_turns_and_both_keep_their_images(tmp_path, model) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    noise_image(root / "b.png", 1)
    started, go, waited = threading.Event(), threading.Event(), threading.Event()

    def slow_embed(m, paths):
        started.set()
        assert go.wait(30)
        return embedding.embed_images(m, paths, 4)

    def note(message: str) -> None:
        if "waiting for another update" in message:
            waited.set()

    results = {}
    first = threading.Thread(
        target=lambda: results.update(first=update(folder, root, model, embed=slow_embed))
    )
    first.start()
    assert started.wait(30)
    noise_image(root / "c.png", 2)  # appears while the first writer is embedding
    second = threading.Thread(
        target=lambda: results.update(
            second=update(
                folder,
                root,
                model,
                embed=lambda m, paths: embedding.embed_images(m, paths, 4),
                warn=note,
            )
        )
    )
    second.start()
    assert waited.wait(30)  # the second writer waits for the lock instead of racing
    go.set()
    first.join(60)
    second.join(60)
    assert results["first"].added == 2 and results["second"].added == 1
    assert assert_rows_match_files(folder, root, model) == ["a.png", "b.png", "c.png"]


def test_a_second_writer_that_cannot_wait_is_refused_by_name(tmp_path, model) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    started, go = threading.Event(), threading.Event()

    def slow_embed(m, paths):
        started.set()
        assert go.wait(30)
        return embedding.embed_images(m, paths, 4)

    first = threading.Thread(target=lambda: update(folder, root, model, embed=slow_embed))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(IndexBusyError, match="being updated by another process") as caught:
            update(folder, root, model, wait=0.2)
        assert str(folder) in str(caught.value) and "\n" not in str(caught.value)
    finally:
        go.set()
        first.join(60)
    assert assert_rows_match_files(folder, root, model) == ["a.png"]


# 3. File names of any kind.


def test_separator_and_non_utf8_names_round_trip_through_index_and_search(
    capsys, tmp_path, model_dir
) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    for seed, name in enumerate(SEPARATOR_NAMES):
        noise_image(root / name, seed)
    cp857 = noise_image(fsname(root, CP857_NAME), 9)
    code, out, err = run(capsys, "index", root, "--index", folder, "--model", model_dir)
    assert code == 0, err
    assert "4 images (4 added" in out
    names = [entry["path"] for entry in load_index(folder).files]
    assert sorted(names) == sorted([*SEPARATOR_NAMES, os.fsdecode(CP857_NAME)])
    # The files list is one JSON object per "\n"-ended line, for any reader.
    meta = json.loads((folder / "meta.json").read_text())
    lines = (folder / meta["files"]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    code, out, err = run(capsys, "search", "--image", cp857, "--index", folder, "--json")
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    assert base64.b64decode(hits[0]["path_bytes"]) == os.fsencode(cp857.resolve())
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert {hit["path"] for hit in hits[1:]} == {str(root.resolve() / n) for n in SEPARATOR_NAMES}
    assert "up to date" in run(capsys, "index", root, "--index", folder)[1]


names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=30,
).filter(lambda name: name not in (".", ".."))
byte_names = st.binary(min_size=1, max_size=30).filter(
    lambda raw: b"/" not in raw and b"\0" not in raw and raw not in (b".", b"..")
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(names, byte_names.map(os.fsdecode)), min_size=1, max_size=6))
def test_any_names_survive_saving_and_loading(tmp_path, names_or_bytes) -> None:
    folder = tmp_path / "index"
    shutil.rmtree(folder, ignore_errors=True)
    paths = sorted({f"d/{name}" for name in names_or_bytes})
    files = [{"path": path, "size": i, "mtime_ns": 7 * i} for i, path in enumerate(paths)]
    rows = np.random.default_rng(0).standard_normal((len(files), 4)).astype(np.float32)
    unreadable = [{"path": paths[0], "size": 1, "mtime_ns": 1, "reason": f"bad {paths[0]}"}]
    meta = {"model": "m", "revision": None, "dim": 4, "root": "/r", "unreadable": unreadable}
    save_index(folder, meta, files, rows, None)
    index = load_index(folder)
    assert index.files == files
    assert index.meta["unreadable"][0]["path"] == paths[0]
    np.testing.assert_array_equal(index.embeddings, rows)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(names.map(os.fsencode), byte_names), min_size=1, max_size=5))
def test_any_names_on_disk_are_found_exactly(tmp_path, raw_names) -> None:
    from search.scanning import scan_images

    root = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), os.urandom(6).hex().encode())))
    root.mkdir()
    expected = set()
    for raw in raw_names:
        raw = raw[:200] + b".jpg"
        fsname(root, raw).write_bytes(b"x")
        expected.add(raw)
    assert {os.fsencode(name) for name in scan_images(root)} == expected


# 4. Clean-up touches only the index's own files.


def test_update_leaves_the_users_own_files_in_the_index_folder(tmp_path, model) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    update(folder, root, model)
    mine = ["embeddings.mine.npy", "files.backup.jsonl", "embeddings.99.npy", "notes.txt"]
    for name in mine:
        (folder / name).write_text("keep me")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "ann.1.faiss").write_text("an ANN structure of generation 1")
    meta["ann"] = {"kind": "IVF-SQ8", "file": "ann.1.faiss", "nprobe": 1}
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / ".files.1.jsonl.abc12345.tmp").write_text("left by a killed run")
    noise_image(root / "b.png", 1)
    update(folder, root, model)
    for name in mine:
        assert (folder / name).read_text() == "keep me"
    names = {path.name for path in folder.iterdir()} - set(mine)
    assert names == {".lock", "meta.json", "embeddings.2.npy", "files.2.jsonl"}
    assert "ann" not in json.loads((folder / "meta.json").read_text())  # it described old rows


def test_a_folder_with_other_files_and_no_index_is_left_alone(capsys, tmp_path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "embeddings.1.npy").write_text("mine")
    root = tmp_path / "photos"
    noise_image(root / "a.png", 0)
    code, _, err = run(capsys, "index", root, "--index", folder)
    assert code == 1 and "holds no index" in err
    assert sorted(p.name for p in folder.iterdir()) == ["embeddings.1.npy"]  # no lock file left


# 5. Everything read from disk is validated.


@pytest.fixture
def built(tmp_path, model) -> Path:
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    noise_image(root / "b.png", 1)
    update(folder, root, model)
    return folder


def edit_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


def edit_files(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    path = folder / meta["files"]
    entries = [json.loads(line) for line in path.read_text().split("\n") if line]
    change(entries)
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


META_EDITS = {
    "no dim": lambda m: m.pop("dim"),
    "no files": lambda m: m.pop("files"),
    "no root": lambda m: m.pop("root"),
    "no revision": lambda m: m.pop("revision"),
    "revision a number": lambda m: m.update(revision=3),
    "dim a string": lambda m: m.update(dim="16"),
    "count a bool": lambda m: m.update(count=True),
    "count negative": lambda m: m.update(count=-1),
    "embeddings outside": lambda m: m.update(embeddings="../../etc/passwd"),
    "files a list": lambda m: m.update(files=["files.1.jsonl"]),
    "unreadable not a list": lambda m: m.update(unreadable={"a": 1}),
    "unreadable without reason": lambda m: m.update(
        unreadable=[{"path": "x.png", "size": 1, "mtime_ns": 1}]
    ),
    "superseded outside": lambda m: m.update(superseded=["/home/user/photo.jpg"]),
    "fingerprint of numbers": lambda m: m.update(fingerprint={"weights": 1}),
    "version 3": lambda m: m.update(version=3),
}


@pytest.mark.parametrize("edit", sorted(META_EDITS))
def test_a_hand_edited_meta_json_is_one_clear_error(built, edit) -> None:
    edit_meta(built, META_EDITS[edit])
    with pytest.raises(image_index.IndexDamagedError) as caught:
        load_index(built)
    message = str(caught.value)
    assert "meta.json" in message and "\n" not in message


FILES_EDITS = {
    "no path": lambda e: e[0].pop("path"),
    "no size": lambda e: e[1].pop("size"),
    "mtime a float": lambda e: e[0].update(mtime_ns=1.5),
    "path escapes": lambda e: e[0].update(path="../../secret.png"),
    "absolute path": lambda e: e[0].update(path="/etc/passwd"),
    "path_bytes not base64": lambda e: e[0].update(path_bytes="***"),
    "a row too many": lambda e: e.append(dict(e[0])),
    "not an object": lambda e: e.__setitem__(0, ["a.png", 1, 2]),
}


@pytest.mark.parametrize("edit", sorted(FILES_EDITS))
def test_a_hand_edited_files_list_is_one_clear_error(built, edit) -> None:
    edit_files(built, FILES_EDITS[edit])
    with pytest.raises(image_index.IndexDamagedError) as caught:
        load_index(built)
    message = str(caught.value)
    assert "files.1.jsonl" in message and "\n" not in message


def npy_with_header(path: Path, shape: tuple, dtype: str = "<f4", body: int = 64) -> Path:
    with open(path, "wb") as file:
        header = {"descr": dtype, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(file, header)
        file.write(b"\0" * body)
    return path


@pytest.mark.parametrize(
    "shape, dtype, body",
    [((10**10, 16), "<f4", 64), ((2, 16), "<f4", 64), ((2, 16), "<f8", 256), ((2, 16), "<f4", 0)],
)
def test_an_npy_header_is_checked_before_anything_is_allocated(tmp_path, shape, dtype, body):
    path = npy_with_header(tmp_path / "embeddings.1.npy", shape, dtype, body)
    with pytest.raises(validation.IndexFileError, match="embeddings.1.npy"):
        validation.read_embeddings(path, shape[0], 16)  # meta.json agreeing does not help


def test_billions_of_declared_rows_end_in_one_line_from_search(capsys, tmp_path, model_dir):
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    assert run(capsys, "index", root, "--index", folder, "--model", model_dir)[0] == 0
    meta = json.loads((folder / "meta.json").read_text())
    npy_with_header(folder / meta["embeddings"], (4_000_000_000, 16))
    code, out, err = run(capsys, "search", "deniz", "--index", folder)
    assert (code, out) == (1, "")
    assert "embeddings.1.npy" in err and len(err.strip().splitlines()) == 1


def test_nan_rows_are_refused(built) -> None:
    meta = json.loads((built / "meta.json").read_text())
    rows = np.load(built / meta["embeddings"])
    rows[1, 3] = np.nan
    np.save(built / meta["embeddings"], rows)
    with pytest.raises(image_index.IndexDamagedError, match="NaN"):
        load_index(built)


# 6. The index is tied to the model's content.


def replace_model_in_place(model_dir: Path, seed: int) -> None:
    shutil.rmtree(model_dir)
    save_tiny_model_folder(model_dir, seed=seed)


def test_a_model_replaced_in_place_is_refused_then_reembedded_on_request(
    capsys, tmp_path, model_dir
) -> None:
    from transformers import AutoModel

    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    noise_image(root / "b.png", 1)
    assert run(capsys, "index", root, "--index", folder, "--model", model_dir)[0] == 0
    before = load_index(folder)
    replace_model_in_place(model_dir, seed=1)  # as `convert --force` does
    noise_image(root / "c.png", 2)
    code, out, err = run(capsys, "index", root, "--index", folder)
    assert (code, out) == (1, "")
    assert "--reembed" in err and "image tower" in err and len(err.strip().splitlines()) == 1
    assert load_index(folder).meta == before.meta  # nothing was mixed in

    code, out, err = run(capsys, "search", "deniz", "--index", folder)  # its rows cannot be ranked
    assert (code, out) == (1, "") and "image tower" in err and "--reembed" in err

    code, out, _ = run(capsys, "index", root, "--index", folder, "--reembed")
    assert code == 0 and "3 images (1 added, 2 updated" in out
    new_model = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
    assert assert_rows_match_files(folder, root, new_model) == ["a.png", "b.png", "c.png"]
    code, _, err = run(capsys, "search", "deniz", "--index", folder)
    assert code == 0 and "differ" not in err


def test_reembed_with_another_model_replaces_every_row(capsys, tmp_path, model_dir) -> None:
    from transformers import AutoModel

    other = save_tiny_model_folder(tmp_path / "other", seed=2)
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    assert run(capsys, "index", root, "--index", folder, "--model", model_dir)[0] == 0
    code, out, _ = run(capsys, "index", root, "--index", folder, "--model", other, "--reembed")
    assert code == 0 and "(0 added, 1 updated" in out
    assert load_index(folder).meta["model"] == str(other.resolve())
    loaded = AutoModel.from_pretrained(other, trust_remote_code=True).eval()
    assert assert_rows_match_files(folder, root, loaded) == ["a.png"]


# 7. Transient read failures are tried again; broken files are not.


def test_a_transient_read_error_is_retried_on_the_next_run(tmp_path, model, monkeypatch):
    root, folder = tmp_path / "photos", tmp_path / "index"
    for seed, name in enumerate(["a.png", "b.png", "c.png"]):
        noise_image(root / name, seed)
    (root / "broken.png").write_bytes(b"not a png")
    update(folder, root, model)
    noise_image(root / "b.png", 10)  # changed, then unreadable for a moment
    os.utime(root / "b.png", ns=(1, 1))
    noise_image(root / "d.png", 11)  # new, then unreadable for a moment
    failing = {"b.png": errno.EIO, "d.png": errno.EACCES}

    def flaky_open(path, *args, **kwargs):
        if Path(path).name in failing:
            code = failing[Path(path).name]
            raise OSError(code, os.strerror(code), str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(embedding, "open", flaky_open, raising=False)
    warnings = []
    summary = update(folder, root, model, warnings=warnings)
    assert (summary.retry, summary.unreadable, summary.added, summary.updated) == (2, 1, 0, 0)
    index = load_index(folder)
    assert [entry["path"] for entry in index.meta["unreadable"]] == ["broken.png"]
    assert any("Input/output error" in w and "tried again next run" in w for w in warnings)
    # The changed file keeps its old row and entry, so it still looks changed next time.
    assert [entry["path"] for entry in index.files] == ["a.png", "b.png", "c.png"]

    monkeypatch.undo()
    summary = update(folder, root, model)
    assert (summary.added, summary.updated, summary.retry, summary.unreadable) == (1, 1, 0, 1)
    assert assert_rows_match_files(folder, root, model) == ["a.png", "b.png", "c.png", "d.png"]


# 8. Linked folders are followed, loops end.


def test_linked_folders_are_indexed_and_a_loop_is_reported(capsys, tmp_path, model_dir) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "a.png", 0)
    noise_image(tmp_path / "archive" / "old.png", 1)
    os.symlink(tmp_path / "archive", root / "archive")
    os.symlink(".", root / "archive-loop")  # the folder itself: a loop
    code, out, err = run(capsys, "index", root, "--index", folder, "--model", model_dir)
    assert code == 0 and "2 images" in out
    assert "archive-loop" in err and "already scanned" in err
    assert [entry["path"] for entry in load_index(folder).files] == ["a.png", "archive/old.png"]


# 9. Decoded photos are streamed, not held a batch at a time.


def test_at_most_one_decoded_photo_per_worker_is_alive(tmp_path, model, monkeypatch) -> None:
    import torch

    from turkish_clip import image_loading

    paths = [noise_image(tmp_path / f"{i}.png", i, size=(300, 200)) for i in range(12)]
    alive, peak, lock = [0], [0], threading.Lock()
    load = image_loading.load_image

    def counted(*args, **kwargs):
        image = load(*args, **kwargs)
        with lock:
            alive[0] += 1
            peak[0] = max(peak[0], alive[0])
        weakref.finalize(image, lambda: alive.__setitem__(0, alive[0] - 1))
        return image

    monkeypatch.setattr(image_loading, "load_image", counted)
    result = embedding.embed_images(model, paths, batch_size=12)
    workers = min(torch.get_num_threads(), 12)
    assert 1 <= peak[0] <= workers < 12
    monkeypatch.undo()
    np.testing.assert_allclose(
        result.embeddings, model.encode_image(paths, return_numpy=True), atol=1e-5
    )


# 10. Version 1 indexes still load, search, and are upgraded.


def write_version_1(folder: Path, root: Path, names: list[str], rows: np.ndarray, model_dir):
    """An index exactly as version 1 wrote it (names unescaped, no fingerprint)."""
    folder.mkdir()
    np.save(folder / "embeddings.1.npy", rows)
    files = [{"path": n, **dict(zip(("size", "mtime_ns"), _stat(root / n)))} for n in names]
    text = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in files)
    (folder / "files.1.jsonl").write_text(text, encoding="utf-8")
    meta = {"format": "turkish-clip-index", "version": 1, "model": str(model_dir.resolve())}
    meta.update(revision=None, dim=16, root=str(root.resolve()), count=len(names), generation=1)
    meta.update(embeddings="embeddings.1.npy", files="files.1.jsonl", unreadable=[])
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def test_a_version_1_index_searches_and_is_upgraded_on_the_next_write(
    capsys, tmp_path, model_dir
) -> None:
    from transformers import AutoModel

    saved = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
    root, folder = tmp_path / "photos", tmp_path / "index"
    names = ["a.png", SEPARATOR_NAMES[0]]  # version 1 wrote U+2028 raw; it must still load
    for seed, name in enumerate(names):
        noise_image(root / name, seed)
    rows = saved.encode_image([root / name for name in names], return_numpy=True)
    write_version_1(folder, root, names, rows, model_dir)
    code, out, _ = run(capsys, "search", "--image", root / names[1], "--index", folder, "--json")
    assert code == 0
    assert json.loads(out.splitlines()[0])["path"] == str(root.resolve() / names[1])

    noise_image(root / "c.png", 5)
    code, out, err = run(capsys, "index", root, "--index", folder)
    assert code == 0 and "1 added, 0 updated, 0 removed, 2 unchanged" in out
    assert "version 1" in err
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["version"] == 2 and set(meta["fingerprint"]) == {"image_tower", "image_processor"}
    assert not (folder / "embeddings.1.npy").exists()
    assert assert_rows_match_files(folder, root.resolve(), saved) == sorted(names + ["c.png"])


# 11. search --image keeps the model's pixel limit.


def test_search_by_image_uses_the_models_pixel_limit(capsys, tmp_path, model_dir) -> None:
    config_path = model_dir / "preprocessor_config.json"
    config = json.loads(config_path.read_text())
    config["max_image_pixels"] = 1000
    config_path.write_text(json.dumps(config))
    processor_path = model_dir / "processor_config.json"
    processor = json.loads(processor_path.read_text())
    if "image_processor" in processor:
        processor["image_processor"]["max_image_pixels"] = 1000
        processor_path.write_text(json.dumps(processor))
    root, folder = tmp_path / "photos", tmp_path / "index"
    noise_image(root / "small.png", 0, size=(30, 30))
    big = noise_image(tmp_path / "big.png", 1, size=(48, 40))
    assert run(capsys, "index", root, "--index", folder, "--model", model_dir)[0] == 0
    code, out, err = run(capsys, "search", "--image", big, "--index", folder)
    assert (code, out) == (1, "")
    err = without_backend_note(err)
    assert "big.png" in err and "1,000" in err and len(err.strip().splitlines()) == 1


# 12. An index belongs to the model's image side, wherever the model lives.


def index_photos(capsys, root: Path, folder: Path, model_dir: Path, *names: str) -> str:
    """Adds photos `names` to `root`, then indexes it with `model_dir`; returns the output."""
    for name in names:
        noise_image(root / name, sum(map(ord, name)))
    code, out, err = run(capsys, "index", root, "--index", folder, "--model", model_dir)
    assert code == 0, err
    return out


def test_a_moved_model_a_copy_with_onnx_files_and_a_student_serve_the_index(
    capsys, tmp_path, model_dir, tiny_onnx_dir
) -> None:
    from transformers import AutoModel

    from turkish_clip import save_model_folder

    root, folder = tmp_path / "photos", tmp_path / "index"
    index_photos(capsys, root, folder, model_dir, "a.png", "b.png")
    moved = model_dir.rename(tmp_path / "moved")
    noise_image(root / "c.png", 3)
    code, _, err = run(capsys, "index", root, "--index", folder)  # its recorded folder is gone
    assert code == 1 and "is gone" in err and "--model" in err
    assert "(1 added" in index_photos(capsys, root, folder, moved)
    assert load_index(folder).meta["model"] == str(moved.resolve())

    copy = shutil.copytree(tiny_onnx_dir, tmp_path / "copy")  # the same weights, ONNX added
    query = ["search", "deniz", "--index", folder, "--json", "--top-k", 3]
    code, by_onnx, err = run(capsys, *query, "--model", copy)
    assert code == 0, err
    code, by_torch, _ = run(capsys, *query)
    assert [json.loads(line)["path"] for line in by_onnx.splitlines()] == [
        json.loads(line)["path"] for line in by_torch.splitlines()
    ]
    noise_image(root / "d.png", sum(map(ord, "d.png")))
    # onnxruntime float32, whose rows match torch's within 1e-5 as checked below; `index`
    # would pick the copy's int8 files by default (the same space, within a cosine of 0.995).
    code, out, err = run(
        capsys, "index", root, "--index", folder, "--model", copy, "--backend", "onnx"
    )
    assert code == 0 and "(1 added" in out, err

    student = save_model_folder(tiny_student(), tiny_processor(), tmp_path / "student")
    assert "(1 added" in index_photos(capsys, root, folder, student, "e.png")
    code, out, err = run(capsys, *query, "--model", student)
    assert code == 0 and len(out.splitlines()) == 3, err
    teacher = AutoModel.from_pretrained(moved, trust_remote_code=True).eval()
    assert assert_rows_match_files(folder, root, teacher) == [f"{c}.png" for c in "abcde"]


def test_a_model_with_another_image_side_is_refused_naming_reembed(
    capsys, tmp_path, model_dir
) -> None:
    other = save_tiny_model_folder(tmp_path / "other", seed=1)
    root, folder = tmp_path / "photos", tmp_path / "index"
    index_photos(capsys, root, folder, model_dir, "a.png")
    before = load_index(folder).meta
    noise_image(root / "b.png", 2)
    for command in (["index", root], ["search", "deniz"]):
        code, out, err = run(capsys, *command, "--index", folder, "--model", other)
        assert (code, out) == (1, "") and len(err.splitlines()) == 1
        assert "image tower" in err and "--reembed" in err and str(folder) in err
    assert load_index(folder).meta == before


def test_an_index_recording_the_older_whole_file_fingerprint(capsys, tmp_path, model_dir):
    import hashlib

    root, folder = tmp_path / "photos", tmp_path / "index"
    index_photos(capsys, root, folder, model_dir, "a.png")
    meta_path = folder / "meta.json"
    weights = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()

    def record_older_layout(digest: str) -> None:
        meta = json.loads(meta_path.read_text())
        pixels = meta["fingerprint"]["image_processor"]
        meta["fingerprint"] = {"weights": digest, "image_processor": pixels, "tokenizer": "0" * 64}
        meta_path.write_text(json.dumps(meta))

    record_older_layout(weights)  # the same file: accepted, and recorded anew on the next write
    assert run(capsys, "search", "deniz", "--index", folder)[0] == 0
    assert "(1 added" in index_photos(capsys, root, folder, model_dir, "b.png")
    assert set(json.loads(meta_path.read_text())["fingerprint"]) == {
        "image_tower",
        "image_processor",
    }
    record_older_layout("0" * 64)  # another file: refused, never silently accepted
    noise_image(root / "c.png", 3)
    for command in (["index", root], ["search", "deniz"]):
        code, _, err = run(capsys, *command, "--index", folder)
        assert code == 1 and "--reembed" in err and "whole checkpoint" in err


# 13. A full disk or a killed run leaves no file of the index's own naming behind.


@pytest.mark.parametrize("failing", ["embeddings.", "files.", "meta.json"])
def test_a_full_disk_during_an_update_leaves_no_orphan_file(
    capsys, tmp_path, model_dir, monkeypatch, failing
) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    for name in ("a.png", "b.png", "c.png"):
        noise_image(root / name, ord(name[0]))
    command = ["index", root, "--index", folder, "--model", model_dir]
    code, _, err = run(capsys, *command, "--ann-threshold", 2)
    assert code == 0, err
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert "ann.1.faiss" in before
    noise_image(root / "d.png", 4)
    write = image_index._write_atomically

    def full_disk(path: Path, writer) -> None:
        if path.name.startswith(failing):  # the structure ann.2.faiss is written before these
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, writer)

    monkeypatch.setattr(image_index, "_write_atomically", full_disk)
    code, out, err = run(capsys, "index", root, "--index", folder)
    assert (code, out) == (1, "") and "No space left on device" in err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    monkeypatch.undo()
    code, out, _ = run(capsys, "index", root, "--index", folder)
    assert code == 0 and "4 images (1 added" in out


def test_a_full_disk_while_building_a_structure_leaves_no_orphan_file(
    capsys, tmp_path, model_dir, monkeypatch
) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    index_photos(capsys, root, folder, model_dir, "a.png", "b.png")
    before = sorted(path.name for path in folder.iterdir())
    write = image_index._write_atomically

    def full_disk(path: Path, writer) -> None:
        if path.name == "meta.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, writer)

    monkeypatch.setattr(image_index, "_write_atomically", full_disk)
    code, _, err = run(capsys, "ann", "--index", folder)
    assert code == 1 and "No space left on device" in err
    assert sorted(path.name for path in folder.iterdir()) == before


def test_leftovers_of_an_interrupted_update_are_swept_on_the_next_run(
    capsys, tmp_path, model_dir
) -> None:
    root, folder = tmp_path / "photos", tmp_path / "index"
    index_photos(capsys, root, folder, model_dir, "a.png")
    assert load_index(folder).meta["generation"] == 1
    leftovers = ["ann.2.faiss", "embeddings.2.npy", "files.2.jsonl", "ann.1.faiss"]
    leftovers.append(".ann.2.faiss.k3j4h5.tmp")
    users = ["ann.notes.txt", "embeddings.99.npy", "files.backup.jsonl"]
    for name in leftovers + users:
        (folder / name).write_bytes(b"left behind")
    code, out, err = run(capsys, "index", root, "--index", folder)
    assert code == 0 and "up to date" in out
    assert "removed ann.2.faiss" in err
    names = {path.name for path in folder.iterdir()}
    assert not names & set(leftovers) and set(users) <= names
    assert load_index(folder).meta["generation"] == 1
