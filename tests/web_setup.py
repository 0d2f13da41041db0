"""Shared set-up of the web page's tests: a tiny model, a photo folder indexed by cli.py, and the
page served on a free port of 127.0.0.1 in a background thread."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub.utils
import numpy as np
import transformers.utils.logging
from builders import save_tiny_model_folder
from PIL import Image

import cli
from web.engine import AppModel, load_app_model
from web.server import bind, build_server_app, url_host, uvicorn_server

PHOTOS = ["deniz.png", "kedi.jpg", "orman.webp", "tatil/sahil.png", "tatil/şehir gece.jpg"]


def noise_image(path: Path, seed: int) -> Path:
    """Random pixels: unlike solid colours, they give the random model clearly distinct images."""
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def corrupt_jpeg(path: Path) -> Path:
    """The first bytes of a real JPEG, then nothing: a truncated upload."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[:100])
    return path


def indexed_folder(base: Path, names: list[str] = PHOTOS) -> tuple[Path, Path, Path]:
    """(model folder, photo folder, index folder), the index built by `cli.py index`."""
    model = save_tiny_model_folder(base / "model")
    photos = base / "photos"
    for seed, name in enumerate(names):
        noise_image(photos / name, seed)
    index = base / "photos.index"
    with contextlib.redirect_stdout(io.StringIO()), library_logging_kept():
        assert cli.main(["index", str(photos), "--index", str(index), "--model", str(model)]) == 0
    return model, photos, index


@contextlib.contextmanager
def library_logging_kept():
    """cli.main quiets transformers for the whole process; other test modules expect defaults."""
    verbosity = transformers.utils.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    hub_bars = not huggingface_hub.utils.are_progress_bars_disabled()
    try:
        yield
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
        if hub_bars:
            huggingface_hub.utils.enable_progress_bars()


def load_for_page(index: Path) -> AppModel:
    return load_app_model(None, None, index)


def serve_page(app: AppModel, examples: list[Path] = ()) -> RunningServer:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    return start(build_server_app(app, examples), "127.0.0.1", 0)


@dataclass
class RunningServer:
    url: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start(server_app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serves in a background thread; stop() ends it."""
    return start_on(server_app, bind(host, port))


def start_on(server_app, sock: socket.socket) -> RunningServer:
    host, port = sock.getsockname()[:2]
    server = uvicorn_server(server_app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)
    if not server.started:
        raise RuntimeError(f"the server on {host}:{port} did not start")
    return RunningServer(f"http://{url_host(host)}:{port}", server, thread)
