"""The command line's large-index parts on a tiny random model: the `ann` command, the structure
that `index` builds past --ann-threshold, `search --exact` and `search --queries`."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import noise_image, save_tiny_model_folder, without_backend_note

import cli
from search.image_index import load_index


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for number in range(12):
        noise_image(root / f"foto{number:02d}.png", number)
    return root


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def build(capsys, photos: Path, folder: Path, model_dir: Path, *extra: object) -> None:
    code, _, err = run(capsys, "index", photos, "--index", folder, "--model", model_dir, *extra)
    assert code == 0, err


def results(out: str) -> list[tuple[str, float]]:
    return [(row["path"], row["score"]) for row in map(json.loads, out.splitlines())]


def test_index_past_the_threshold_builds_a_structure_and_search_uses_it(
    capsys, tmp_path, photos, model_dir
) -> None:
    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 5)
    index = load_index(folder)
    assert index.meta["ann"]["rows"] == 12 and (folder / index.meta["ann"]["file"]).is_file()
    query = ["--index", folder, "--top-k", 4, "--json", "--image", photos / "foto03.png"]
    code, approximate, _ = run(capsys, "search", *query)
    assert code == 0
    code, exact, _ = run(capsys, "search", *query, "--exact")
    assert code == 0
    assert [path for path, _ in results(approximate)] == [path for path, _ in results(exact)]
    assert results(exact)[0][0] == str(photos / "foto03.png")
    # The structure stores 8-bit values: its scores are close to the exact ones, not equal.
    np.testing.assert_allclose(
        [score for _, score in results(approximate)], [s for _, s in results(exact)], atol=0.02
    )


def test_below_the_threshold_no_structure_is_built_and_ann_builds_one(
    capsys, tmp_path, photos, model_dir
) -> None:
    folder = tmp_path / "small.index"
    build(capsys, photos, folder, model_dir)
    assert "ann" not in load_index(folder).meta
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    code, out, err = run(capsys, "ann", "--index", folder)
    assert code == 0, err
    assert out.startswith(f"{folder}: IVF-SQ8 over 12 rows, 1 lists, 1 searched per query")
    meta = load_index(folder).meta
    after = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert set(after) - set(before) == {meta["ann"]["file"]}
    for name in (meta["embeddings"], meta["files"]):
        assert after[name] == before[name]  # no image read, no row rewritten


def test_queries_file_answers_each_line_as_a_single_search_does(
    capsys, monkeypatch, tmp_path, photos, model_dir
) -> None:
    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir)
    queries = tmp_path / "queries.txt"
    queries.write_text("sahilde bir köpek\n\n  kırmızı bir araba  \nİstanbul'da gece\n")
    loads = []
    from search import library

    load_model = library.load_model
    monkeypatch.setattr(
        library, "load_model", lambda *a, **k: loads.append(a) or load_model(*a, **k)
    )
    code, out, err = run(capsys, "search", "--queries", queries, "--index", folder, "--top-k", 3)
    assert code == 0, err
    assert len(loads) == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["query"] for line in lines] == [
        "sahilde bir köpek",
        "kırmızı bir araba",
        "İstanbul'da gece",
    ]
    for line in lines:
        code, single, _ = run(capsys, "search", line["query"], "--index", folder, "--top-k", 3)
        expected = [row.split(None, 2) for row in single.splitlines()]
        got = [[str(r["rank"]), f"{r['score']:.4f}", r["path"]] for r in line["results"]]
        assert got == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "queries file '{}' not found"),
        ("\n  \n", "queries file '{}' holds no query"),
        (b"\xff\xfe bozuk", "queries file '{}' is not UTF-8 text"),
    ],
)
def test_bad_queries_files_are_refused_by_name(
    capsys, tmp_path, photos, model_dir, content, message
) -> None:
    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir)
    path = tmp_path / "queries.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, _, err = run(capsys, "search", "--queries", path, "--index", folder)
    assert (code, err) == (1, f"error: {message.format(path)}\n")
    code, _, err = run(capsys, "search", "kedi", "--queries", path, "--index", folder)
    assert (code, err) == (1, "error: give one of: a text query, --image PATH, --queries FILE\n")


def test_ann_on_a_missing_or_corrupt_index_and_a_corrupt_structure(
    capsys, tmp_path, photos, model_dir
) -> None:
    missing = tmp_path / "yok.index"
    code, _, err = run(capsys, "ann", "--index", missing)
    hint = f"build one with `cli.py index FOLDER --index {missing}`"
    assert (code, err) == (1, f"error: no index in '{missing}' ({hint})\n")
    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 1)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / meta["ann"]["file"]).write_bytes(b"bozuk")
    code, _, err = run(capsys, "search", "kedi", "--index", folder)
    structure = folder / meta["ann"]["file"]
    assert code == 1 and err.startswith(f"error: approximate index {structure}")
    assert err.endswith(
        f"(rebuild it with `cli.py ann --index {folder}`, or search with --exact)\n"
    )
    assert run(capsys, "search", "kedi", "--index", folder, "--exact")[0] == 0
    assert run(capsys, "ann", "--index", folder)[0] == 0
    assert run(capsys, "search", "kedi", "--index", folder)[0] == 0

    (folder / "meta.json").write_text("{not json")
    code, _, err = run(capsys, "ann", "--index", folder)
    assert code == 1 and err.startswith(f"error: index {folder} is damaged:")


def test_without_faiss_the_structure_is_refused_and_exact_search_works(
    capsys, monkeypatch, tmp_path, photos, model_dir
) -> None:
    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 1)
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    code, out, err = run(capsys, "search", "kedi", "--index", folder)
    assert (code, out) == (1, "") and err.startswith("error: approximate search needs FAISS")
    assert err.endswith(": pip install faiss-cpu (or search with --exact)\n")
    assert run(capsys, "search", "kedi", "--index", folder, "--exact")[0] == 0


@pytest.mark.parametrize(
    "option", [["--ray-address", "ray://head:10001"], ["--gpus-per-worker", 1]]
)
def test_ray_options_without_the_ray_engine_are_refused(capsys, tmp_path, photos, option) -> None:
    code, _, err = run(capsys, "index", photos, "--index", tmp_path / "x.index", *option)
    assert (code, err) == (1, "error: --ray-address and --gpus-per-worker need --engine ray\n")
    assert not (tmp_path / "x.index").exists()


def test_a_failed_ray_run_is_one_line_saying_it_resumes(capsys, monkeypatch, tmp_path, photos):
    from search import engines
    from search.ray_engine import RayRunError

    def failing(self, *args):
        raise RayRunError("the Ray run failed: worker died")

    monkeypatch.setattr(engines.RayEngine, "embed", failing)
    model_dir = save_tiny_model_folder(tmp_path / "model")
    argv = ["index", photos, "--index", tmp_path / "x.index", "--model", model_dir]
    code, out, err = run(capsys, *argv, "--engine", "ray")
    assert (code, out) == (1, "")
    assert without_backend_note(err).splitlines()[-1] == (
        "error: the Ray run failed: worker died (finished batches are kept: run the same "
        "command again to resume)"
    )


# Calibration on Turkish captions, and a wider or narrower search per query.


def test_index_and_ann_calibrate_on_the_models_caption_embeddings(
    capsys, monkeypatch, tmp_path, photos, model_dir
) -> None:
    from search import calibration

    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 5)
    entry = load_index(folder).meta["ann"]
    count = len(calibration.calibration_captions())
    assert (entry["calibration"], entry["queries"]) == ("captions", count)
    code, out, err = run(capsys, "ann", "--index", folder)
    assert code == 0, err
    assert f"on {count} Turkish captions" in out
    # Without its model (moved away), the structure is still built, on the rows, and says so.
    model_dir.rename(tmp_path / "moved")
    try:
        code, out, err = run(capsys, "ann", "--index", folder)
    finally:
        (tmp_path / "moved").rename(model_dir)
    assert code == 0 and "on its own rows" in out
    assert "calibrated on the index's own rows" in err and "--model" in err
    assert load_index(folder).meta["ann"]["calibration"] == "rows"


def test_recall_and_nprobe_options_choose_the_breadth_of_one_search(
    capsys, monkeypatch, tmp_path, photos, model_dir
) -> None:
    from search import ann as ann_module

    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 5)
    probes = []
    search = ann_module.ANN.search
    monkeypatch.setattr(
        ann_module.ANN,
        "search",
        lambda self, q, k, nprobe=None, allowed=None: (
            probes.append(nprobe) or search(self, q, k, nprobe, allowed)
        ),
    )
    query = ["search", "deniz", "--index", folder, "--json"]
    assert run(capsys, *query, "--nprobe", 3)[0] == 0
    assert probes == [3]
    code, exact, _ = run(capsys, *query, "--recall", 1)  # only exact search promises all
    assert code == 0 and probes == [3]
    assert exact == run(capsys, *query, "--exact")[1]
    assert run(capsys, *query, "--recall", 0.5)[0] == 0
    assert len(probes) == 2 and probes[1] is not None
    for bad in (["--recall", 0], ["--recall", "1.5"], ["--nprobe", 0], ["--nprobe", "x"]):
        code, _, err = run(capsys, *query, *bad)
        assert code == 2 and f"argument {bad[0]}" in err and "Traceback" not in err
    code, _, err = run(capsys, *query, "--nprobe", 2, "--exact")
    assert code == 2 and "not allowed with" in err


def test_nprobe_on_an_index_without_a_structure_says_it_is_not_used(
    capsys, tmp_path, photos, model_dir
) -> None:
    folder = tmp_path / "small.index"
    build(capsys, photos, folder, model_dir)
    code, out, err = run(capsys, "search", "deniz", "--index", folder, "--nprobe", 4)
    assert code == 0 and out and "--nprobe is not used" in err


# Hostile numbers and files.


@pytest.mark.parametrize("exact", [[], ["--exact"]])
def test_a_huge_top_k_lists_every_image_once(capsys, tmp_path, photos, model_dir, exact) -> None:
    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 5)
    code, out, err = run(
        capsys, "search", "deniz", "--index", folder, "--json", "--top-k", 3_000_000_000, *exact
    )
    assert code == 0, err
    paths = [path for path, _ in results(out)]
    assert sorted(paths) == sorted(str(path) for path in photos.iterdir())


@pytest.mark.parametrize("value", ["1e11", "2.5", "-3", "0", "on"])
def test_a_top_k_that_is_not_a_positive_integer_is_an_argument_error(
    capsys, tmp_path, value
) -> None:
    code, out, err = run(capsys, "search", "deniz", "--index", tmp_path, "--top-k", value)
    assert (code, out) == (2, "")
    assert f"argument --top-k: must be a positive integer, got '{value}'" in err


def test_a_structure_naming_rows_the_index_lacks_is_refused_by_name(
    capsys, tmp_path, photos, model_dir
) -> None:
    import faiss

    folder = tmp_path / "photos.index"
    build(capsys, photos, folder, model_dir, "--ann-threshold", 5)
    index = load_index(folder)
    path = folder / index.meta["ann"]["file"]
    structure = faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
    structure.reset()
    structure.add_with_ids(index.embeddings, np.arange(12, dtype=np.int64) + 500)
    path.write_bytes(faiss.serialize_index(structure).tobytes())
    code, out, err = run(capsys, "search", "deniz", "--index", folder)
    assert (code, out) == (1, "") and len(err.splitlines()) == 1
    assert err.startswith(f"error: approximate index {path} names row 5")
    assert "outside the index's rows 0..11" in err and "--exact" in err
