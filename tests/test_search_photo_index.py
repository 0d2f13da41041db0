"""The index as one object: dates and cameras recorded from EXIF (and gained by an old index
without re-embedding), filters, the minimum score, near-duplicate groups, typed refusals, and a
reader that sees each generation whole while a writer replaces it."""

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from builders import (
    exif_photo,
    noise_image,
    smooth_image,
    tiny_model,
    tiny_processor,
)

from inference.loading import ModelSpec
from search.errors import (
    BadQueryError,
    NoIndexError,
    UnknownPhotoError,
    WrongModelError,
)
from search.filters import parse_filter
from search.image_index import load_index
from search.photo_index import PhotoIndex, photo_id
from search.updating import update_index

SPEC = ModelSpec("tiny")
MAY_2022 = 1651363200  # 2022-05-01T00:00:00 UTC


@pytest.fixture(scope="module")
def model():
    model = tiny_model()
    model.processor = tiny_processor()
    return model


class NoEngine:
    """An engine that must not be asked for anything."""

    def embed(self, *args):
        raise AssertionError("nothing was to be embedded")

    def finish(self, index_folder: Path) -> None:
        pass


def build(folder: Path, root: Path, model, **options):
    return update_index(folder, root, SPEC, model=model, warn=lambda message: None, **options)


@pytest.fixture(scope="module")
def library(tmp_path_factory, model) -> tuple[Path, Path]:
    """Five photos: EXIF dates and cameras on some, a file time on the others, two folders."""
    root = tmp_path_factory.mktemp("library") / "photos"
    exif_photo(root / "nikon.jpg", 0, "2021:06:01 12:00:00", "NIKON CORPORATION", "NIKON D750")
    exif_photo(root / "tatil/canon.jpg", 1, "2023:07:15 09:30:00", "Canon", "Canon EOS R6")
    exif_photo(root / "tatil/plain.png", 2)
    os.utime(root / "tatil/plain.png", (MAY_2022, MAY_2022))
    exif_photo(root / "tatil/2024/fuji.JPG", 3, "2024:01:02 03:04:05", "FUJIFILM", "X-T4")
    noise_image(root / "noise.png", 4)
    os.utime(root / "noise.png", (MAY_2022 + 86400 * 100, MAY_2022 + 86400 * 100))
    folder = root.parent / "photos.index"
    build(folder, root, model)
    return root, folder


def test_dates_and_cameras_are_recorded_per_photo(library) -> None:
    root, folder = library
    entries = {entry["path"]: entry for entry in load_index(folder).files}
    assert entries["nikon.jpg"]["taken"] == "2021-06-01T12:00:00"
    assert entries["nikon.jpg"]["camera"] == "NIKON CORPORATION NIKON D750"
    assert entries["tatil/canon.jpg"]["camera"] == "Canon EOS R6"  # the make is not repeated
    assert entries["tatil/plain.png"] == entries["tatil/plain.png"] | {
        "taken": "2022-05-01T00:00:00",  # no EXIF: the file's time, in UTC
        "camera": None,
    }
    index = PhotoIndex.open(folder)
    assert index.photo(photo_id("tatil/2024/fuji.JPG")) == {
        "id": photo_id("tatil/2024/fuji.JPG"),
        "path": "tatil/2024/fuji.JPG",
        "size": (root / "tatil/2024/fuji.JPG").stat().st_size,
        "mtime_ns": (root / "tatil/2024/fuji.JPG").stat().st_mtime_ns,
        "taken": "2024-01-02T03:04:05",
        "camera": "FUJIFILM X-T4",
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"taken_after": "2023-01-01"}, {"tatil/canon.jpg", "tatil/2024/fuji.JPG"}),
        ({"taken_before": "2022-05-01T00:00:01"}, {"nikon.jpg", "tatil/plain.png"}),
        (
            {"taken_after": "2022-05-01", "taken_before": "2023-07-15"},
            {"tatil/plain.png", "noise.png"},
        ),
        ({"camera": "nikon"}, {"nikon.jpg"}),
        ({"camera": "EOS r6"}, {"tatil/canon.jpg"}),
        ({"folder": "tatil"}, {"tatil/canon.jpg", "tatil/plain.png", "tatil/2024/fuji.JPG"}),
        ({"folder": "tatil/2024/"}, {"tatil/2024/fuji.JPG"}),
        ({"folder": "tat"}, set()),  # a folder, not a prefix of names
        ({"type": "jpg"}, {"nikon.jpg", "tatil/canon.jpg", "tatil/2024/fuji.JPG"}),
        ({"type": ".PNG", "folder": "tatil"}, {"tatil/plain.png"}),
    ],
)
@pytest.mark.parametrize("exact", [True, False])
def test_filters_pass_exactly_the_photos_that_match(
    tmp_path, library, model, filters, expected, exact
) -> None:
    root, folder = library
    if not exact:  # the same photos, with an approximate structure searched through FAISS
        folder = tmp_path / "ann.index"
        build(folder, root, model, ann_threshold=1)
        assert PhotoIndex.open(folder).has_ann
    index = PhotoIndex.open(folder)
    query = model.encode_text(["deniz"], return_numpy=True)[0]
    hits = index.search(query, 10, parse_filter(filters), exact=exact)
    assert {hit.path for hit in hits} == expected
    rows = {entry["path"]: row for row, entry in enumerate(index.files)}
    for hit in hits:
        assert hit.score == pytest.approx(float(index.embeddings[rows[hit.path]] @ query), abs=1e-5)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_min_score_and_k_cap_and_scores_are_cosine_similarities(library, model) -> None:
    _, folder = library
    index = PhotoIndex.open(folder)
    query = model.encode_text(["kedi"], return_numpy=True)[0]
    everything = index.search(query, 100)
    assert len(everything) == 5  # capped at the index size
    scores = index.embeddings @ query
    assert [hit.score for hit in everything] == pytest.approx(
        sorted(scores, reverse=True), abs=1e-5
    )
    middle = everything[2].score
    above = index.search(query, 100, min_score=middle)
    assert [hit.path for hit in above] == [hit.path for hit in everything[:3]]
    assert index.search(query, 100, min_score=1.01) == []


def test_bad_queries_unknown_ids_and_missing_indexes_are_typed(tmp_path, library, model) -> None:
    _, folder = library
    index = PhotoIndex.open(folder)
    query = model.encode_text(["kedi"], return_numpy=True)[0]
    for k in (0, -1, 1.5, True, "3"):
        with pytest.raises(BadQueryError, match="k must be"):
            index.search(query, k)
    with pytest.raises(BadQueryError, match="min_score must be a finite"):
        index.search(query, 3, min_score=float("nan"))
    with pytest.raises(BadQueryError, match="16 numbers"):
        index.search(query[:5], 3)
    for filters, message in [
        ({"taken_after": "dün"}, "taken_after must be an ISO date"),
        ({"folder": "../etc"}, "inside the indexed one"),
        ({"colour": "red"}, "unknown filter 'colour'"),
        ({"camera": 5}, "must be a string"),
        ("kedi", "filters must be an object"),
    ]:
        with pytest.raises(BadQueryError, match=message):
            parse_filter(filters)
    with pytest.raises(UnknownPhotoError, match="no photo with id 'abc'"):
        index.photo("abc")
    with pytest.raises(BadQueryError, match="threshold must be above 0"):
        index.duplicates(0)
    with pytest.raises(NoIndexError, match="no index in"):
        PhotoIndex.open(tmp_path / "nothing.index")


def test_another_model_is_refused_by_content_not_by_name(tmp_path, library, model) -> None:
    _, folder = library
    assert PhotoIndex.open(folder, model, ModelSpec("another/name")).files  # same content
    retrained = tiny_model(seed=3)
    retrained.processor = tiny_processor()
    with pytest.raises(WrongModelError, match="image tower"):
        PhotoIndex.open(folder, retrained, SPEC)
    wider = tiny_model(projection_dim=8)
    wider.processor = tiny_processor()
    with pytest.raises(WrongModelError, match="16-dim embeddings, the model 8"):
        PhotoIndex.open(folder, wider, SPEC)
    assert PhotoIndex.open(folder, model, SPEC).files  # its own model opens it


def test_an_old_index_gains_dates_and_cameras_without_reembedding(tmp_path, library, model) -> None:
    root, folder = library
    old = tmp_path / "old.index"
    build(old, root, model)
    meta = json.loads((old / "meta.json").read_text())
    files = old / meta["files"]
    lines = [json.loads(line) for line in files.read_text().splitlines()]
    stripped = [{k: v for k, v in line.items() if k not in ("taken", "camera")} for line in lines]
    files.write_text("".join(json.dumps(line) + "\n" for line in stripped))
    before = load_index(old)
    assert all("taken" not in entry for entry in before.files)
    # The index's model ("tiny") cannot be loaded, and the engine refuses work: neither is needed.
    summary = update_index(old, root, ModelSpec(), NoEngine(), warn=print)
    assert (summary.described, summary.added, summary.updated) == (5, 0, 0)
    after = load_index(old)
    np.testing.assert_array_equal(after.embeddings, before.embeddings)
    assert after.files == load_index(folder).files
    assert after.meta["fingerprint"] == before.meta["fingerprint"]
    assert update_index(old, root, SPEC, NoEngine()).up_to_date


def test_near_copies_are_grouped_and_distinct_photos_are_not(tmp_path, model) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    original = smooth_image(0)
    original.save(root / "deniz.jpg", quality=95)
    (root / "kopya").mkdir()
    original.resize((160, 120)).save(root / "kopya/küçük.png")
    original.save(root / "kopya/yeniden.jpg", quality=60)
    original.crop((8, 6, 312, 234)).save(root / "kırpık.png")
    second = smooth_image(7)
    second.save(root / "orman.png")
    second.resize((200, 150)).save(root / "orman-küçük.jpg", quality=90)
    for seed in range(1, 5):
        smooth_image(seed + 10).save(root / f"farklı{seed}.png")
    for ann, name in ((None, "exact.index"), (1, "ann.index")):
        folder = tmp_path / name
        build(folder, root, model, ann_threshold=ann)
        index = PhotoIndex.open(folder)
        assert index.has_ann == (ann is not None)
        groups = index.duplicates(0.999)
        paths = [[photo.path for photo in group.photos] for group in groups]
        assert [sorted(group) for group in paths] == [
            sorted(["deniz.jpg", "kopya/küçük.png", "kopya/yeniden.jpg", "kırpık.png"]),
            sorted(["orman.png", "orman-küçük.jpg"]),
        ]
        for group in groups:
            sizes = [photo.size for photo in group.photos]
            assert sizes == sorted(sizes, reverse=True)  # the largest file first
            assert group.photos[0].score == 1.0 and all(p.score >= 0.999 for p in group.photos)
            assert all(photo.taken for photo in group.photos)
    assert len(list(root.rglob("*.*"))) == 10  # nothing was deleted


def test_queries_during_updates_see_one_generation_whole(tmp_path, model) -> None:
    """A writer adds photos one update at a time while readers query: every answer is all the
    photos of one generation, each with the score its own row gives."""
    root, folder = tmp_path / "photos", tmp_path / "photos.index"
    for seed in range(3):
        noise_image(root / f"foto{seed}.png", seed)
    build(folder, root, model)
    added = [f"yeni{seed}.png" for seed in range(6)]
    generations = [{f"foto{seed}.png" for seed in range(3)}]
    for name in added:
        generations.append(generations[-1] | {name})
    query = model.encode_text(["kedi"], return_numpy=True)[0]
    index = PhotoIndex.open(folder, model, SPEC)
    answers, errors, done = [], [], threading.Event()

    def write() -> None:
        try:
            for seed, name in enumerate(added):
                noise_image(root / name, 100 + seed)
                build(folder, root, model)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                answers.append(index.search(query, 100))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    answers.append(index.search(query, 100))
    own = dict(
        zip(
            sorted(generations[-1]),
            model.encode_image([root / name for name in sorted(generations[-1])], return_numpy=True)
            @ query,
        )
    )
    seen = set()
    for hits in answers:
        paths = {hit.path for hit in hits}
        assert paths in generations  # one generation whole, never a mix
        seen.add(len(paths))
        for hit in hits:
            assert hit.score == pytest.approx(float(own[hit.path]), abs=1e-5)
    assert {hit.path for hit in answers[-1]} == generations[-1]  # the last update is seen
    assert len(seen) >= 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"taken": "yesterday"}, "'taken' must be an ISO date and time"),
        ({"taken": 2024}, "'taken' must be an ISO date and time"),
        ({"camera": 5}, "'camera' must be a string or null"),
    ],
)
def test_hand_edited_dates_and_cameras_are_one_clear_error(tmp_path, library, edit, message):
    import shutil

    from search.errors import IndexDamagedError

    copy = Path(shutil.copytree(library[1], tmp_path / "copy.index"))
    meta = json.loads((copy / "meta.json").read_text())
    files = copy / meta["files"]
    lines = files.read_text().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]) | edit)
    files.write_text("\n".join(lines) + "\n")
    with pytest.raises(IndexDamagedError, match=message):
        PhotoIndex.open(copy)
