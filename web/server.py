"""The page's HTTP server: thumbnails and the Gradio page on one FastAPI app, run by uvicorn."""

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from web.engine import AppModel
from web.page import build_page, example_copies
from web.thumbnails import ThumbnailFiles, add_thumbnail_route

# Uploads larger than this are refused by Gradio before they reach the image loader.
MAX_UPLOAD = "50mb"
# Browser tabs' requests wait in Gradio's queue; the model lock in web.engine does the rest.
CONCURRENCY = 4
# System fonts: Gradio's default theme would make every browser fetch Google Fonts.
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "monospace"]


def build_server_app(app: AppModel, examples: list[Path] = ()):
    """A FastAPI app serving /thumbnail/<id> (with an index) and the page at /."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported
    import gradio as gr
    from fastapi import FastAPI

    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    files = None
    if app.index is not None:
        files = ThumbnailFiles(
            Path(app.index.meta["root"]),
            [entry["path"] for entry in app.index.files],
            app.max_pixels,
        )
        add_thumbnail_route(server, files)  # before the page, which is mounted at "/"
    page = build_page(app, files, example_copies(list(examples)))
    page.queue(default_concurrency_limit=CONCURRENCY)
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    mounted = gr.mount_gradio_app(
        server, page, path="", theme=theme, max_file_size=MAX_UPLOAD, ssr_mode=False
    )
    # Gradio accepts only uploaded files as file inputs once a page "has launched", which
    # mounting never marks; unmarked, its API would copy any server path named by a client.
    page.has_launched = True
    return mounted


@dataclass
class RunningServer:
    url: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(128)  # connections made before uvicorn starts wait instead of being refused
    return sock


def serve(server_app, sock: socket.socket) -> None:
    """Serves until interrupted."""
    _uvicorn(server_app).run(sockets=[sock])


def start(server_app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serves in a background thread (for tests and embedding); stop() ends it."""
    return start_on(server_app, bind(host, port))


def start_on(server_app, sock: socket.socket) -> RunningServer:
    host, port = sock.getsockname()[:2]
    server = _uvicorn(server_app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)
    if not server.started:
        raise RuntimeError(f"the server on {host}:{port} did not start")
    return RunningServer(f"http://{url_host(host)}:{port}", server, thread)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _uvicorn(server_app):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(server_app, log_level="warning", lifespan="on"))
