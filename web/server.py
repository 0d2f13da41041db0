"""The page's HTTP server: the HTTP API, thumbnails and the Gradio page on one FastAPI app, run
by uvicorn."""

import os
import socket
from pathlib import Path

from web.api import add_api
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
    """A FastAPI app serving the API under /api/ (its OpenAPI page at /api/docs),
    /thumbnail/<id> (with an index) and the page at /."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported
    import gradio as gr
    from fastapi import FastAPI

    server = FastAPI(
        title="Turkish CLIP",
        summary="Search a photo index with Turkish text or photos; classify and embed.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    add_api(server, app)  # before the page, which is mounted at "/"
    files = None
    if app.index is not None:
        files = ThumbnailFiles(app.index, app.max_pixels)
        add_thumbnail_route(server, files)
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
    uvicorn_server(server_app).run(sockets=[sock])


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def uvicorn_server(server_app):
    import uvicorn

    # Open connections (a browser tab's event stream, a client's heartbeat) delay a stop by at
    # most this many seconds instead of holding it until they close.
    config = uvicorn.Config(
        server_app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    return uvicorn.Server(config)
