"""Every Python snippet of the README and of docs/ runs as written.

The snippets of one page run in order in one fresh interpreter, as a reader pastes them into one
session, in a folder laid out as the pages assume: the model folder `turkish-clip` (a tiny
converted model), the photos `kedi.jpg`, `sahil.jpg` and `ofis.jpg`, an index `photos.index` of
a `photos/` folder with its approximate-search structure, and tiny stand-ins in local folders
named as the Hub ids the pages name (a local folder is found before the Hub).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.builders import save_tiny_bert, save_tiny_siglip_teacher
from tests.conftest import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

# Runs the blocks given as JSON on stdin in one namespace; names the block that fails.
_RUNNER = """
import json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for number, (line, code) in enumerate(blocks, 1):
    try:
        exec(compile(code, f"{sys.argv[1]} line {line}", "exec"), namespace)
    except BaseException:
        print(f"snippet {number} (line {line}) of {sys.argv[1]} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


def python_blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in _BLOCK.finditer(text)]


def _photo(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, converted_model_dir: Path) -> Path:
    import cli

    folder = tmp_path_factory.mktemp("reader")
    shutil.copytree(converted_model_dir, folder / "turkish-clip")
    for seed, name in enumerate(["kedi.jpg", "sahil.jpg", "ofis.jpg"]):
        _photo(folder / name, seed)
    for seed in range(12):
        _photo(folder / "photos" / f"photo{seed:02d}.jpg", 100 + seed)
    argv = ["index", str(folder / "photos"), "--index", str(folder / "photos.index")]
    argv += ["--model", str(folder / "turkish-clip"), "--ann-threshold", "8", "--quiet"]
    assert cli.main(argv) == 0
    assert "ann" in json.loads((folder / "photos.index" / "meta.json").read_text())
    save_tiny_siglip_teacher(folder / "google" / "siglip2-base-patch16-224")
    save_tiny_bert(folder / "dbmdz" / "distilbert-base-turkish-cased")
    return folder


def test_the_pages_hold_python_snippets() -> None:
    assert python_blocks(REPO_ROOT / "README.md"), "the README shows Python use"


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_python_snippets_run_as_written(page: Path, workspace: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HF_HOME=str(tmp_path / "hf-home"))
    env["HF_HUB_OFFLINE"] = "1"  # the pages' models are local folders
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, page.relative_to(REPO_ROOT).as_posix()],
        input=json.dumps(python_blocks(page)),
        capture_output=True,
        text=True,
        cwd=workspace,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
