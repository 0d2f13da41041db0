"""A web page to search a photo index with Turkish text or a photo, and to classify a photo.

    python app.py --index photos.index          # Search, Duplicates, Classify, About; the API
    python app.py --model turkish-clip          # Classify and About only; the API less search

The model loads once, with the command line's rules (an index's own model by default). The page
listens on 127.0.0.1 unless --host says otherwise and never opens a public share link.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from inference.loading import DEFAULT_MODEL
from terminal.arguments import HelpFormatter

# The original project's demo photos, shown as examples: beside app.py (a Space), or beside the
# repository (a development checkout).
DEMO_PHOTO_NAMES = ("myspc.jpeg", "mysdk.jpeg")
DEMO_PHOTO_FOLDERS = (
    Path(__file__).resolve().parent / "images",
    Path(__file__).resolve().parent.parent / "shared" / "turkish-clip" / "images",
)


def demo_photos(folder: Path | None) -> list[Path]:
    folders = [folder] if folder is not None else DEMO_PHOTO_FOLDERS
    for candidate in folders:
        photos = [candidate / name for name in DEMO_PHOTO_NAMES if (candidate / name).is_file()]
        if photos:
            return photos
    return []


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--index", metavar="DIR", help="an index built with `cli.py index`")
    parser.add_argument(
        "--model",
        help=f"model folder or Hub id (default: the index's model, else {DEFAULT_MODEL!r})",
    )
    parser.add_argument("--revision", help="Hub branch, tag or commit of --model")
    # A Space sets GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; everywhere else the defaults hold.
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        help="port (0 picks a free one)",
    )
    parser.add_argument(
        "--examples", metavar="DIR", help="folder with the demo photos myspc.jpeg / mysdk.jpeg"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from web.engine import load_app_model
    from web.errors import describe
    from web.server import bind, build_server_app, serve, url_host

    try:
        index = Path(args.index).expanduser() if args.index else None
        app = load_app_model(args.model, args.revision, index)
        examples = demo_photos(Path(args.examples) if args.examples else None)
        sock = bind(args.host, args.port)
        server_app = build_server_app(app, examples)
    except (OSError, ValueError, TypeError) as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    print(f"Turkish CLIP page on http://{url_host(args.host)}:{port}", flush=True)
    print(f"HTTP API under http://{url_host(args.host)}:{port}/api/ (see /api/docs)", flush=True)
    serve(server_app, sock)  # uvicorn ends cleanly on Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
