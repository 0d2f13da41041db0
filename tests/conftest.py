"""Shared test fixtures: paths to committed fixtures and to the original project's data, a
tiny OpenAI-format CLIP archive built with OpenAI's own `clip` package, a local HTTP server, and a
stand-in for huggingface_hub.HfApi."""

from __future__ import annotations

import math
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch

# transformers caches remote-code modules by folder name: a private cache for each run keeps two
# runs side by side, or stale copies from an earlier run, from loading each other's files.
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="turkish-clip-modules-"))

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
# Data from the original project lives beside the repository and is never copied into it.
SHARED_DIR = REPO_ROOT.parent / "shared" / "turkish-clip"

# Sizes of the tiny CLIP: clip.model.CLIP derives heads as width // 64, so width 128 gives two
# heads (a wrong head count in the converted config then changes the output).
TINY_CLIP = {
    "embed_dim": 16,
    "image_resolution": 32,
    "vision_layers": 2,
    "vision_width": 128,
    "vision_patch_size": 8,
    "context_length": 8,
    "vocab_size": 50,
    "transformer_width": 64,
    "transformer_heads": 1,
    "transformer_layers": 1,
}
TINY_CLIP_LOGIT_SCALE = math.log(50.0)  # not clip's default log(1 / 0.07)


@dataclass(frozen=True)
class ClipArchive:
    """A TorchScript CLIP archive on disk and what was put into it."""

    path: Path
    sizes: dict
    logit_scale: float


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The original project's data folder; tests needing it skip where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"original turkish-clip data folder {SHARED_DIR} is absent on this machine")
    return SHARED_DIR


def _perturb_clip(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Move every parameter away from its initial value, so a dropped or swapped tensor shows.

    clip initialises LayerNorms to weight 1 / bias 0 and attention biases to 0; a mapping bug
    in those would be invisible without this.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith("logit_scale"):
                param.fill_(TINY_CLIP_LOGIT_SCALE)
            elif "ln_" in name and name.endswith(".weight"):  # ln_pre, ln_1, ..., ln_final
                param.copy_(1.0 + 0.3 * noise)
            elif name.endswith("bias"):
                param.copy_(0.2 * noise)
            else:
                param.add_(0.02 * noise)


@pytest.fixture(scope="session")
def tiny_clip_archive(tmp_path_factory: pytest.TempPathFactory) -> ClipArchive:
    """A tiny ViT CLIP saved the way OpenAI's archives are: traced TorchScript, fp16 weights."""
    from clip.model import CLIP, convert_weights

    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = CLIP(**TINY_CLIP).eval()
    _perturb_clip(model, generator)
    convert_weights(model)
    image = torch.randn(2, 3, 32, 32, generator=generator).half()
    text = torch.randint(0, TINY_CLIP["vocab_size"], (2, TINY_CLIP["context_length"]))
    path = tmp_path_factory.mktemp("clip") / "tiny-vit.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.* deprecation notices
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # about MHA shape checks
        traced = torch.jit.trace(model, (image, text), check_trace=False)
        torch.jit.save(traced, str(path))
    return ClipArchive(path=path, sizes=dict(TINY_CLIP), logit_scale=TINY_CLIP_LOGIT_SCALE)


@pytest.fixture(scope="session")
def converted_model_dir(tmp_path_factory, fixtures_dir, tiny_clip_archive) -> Path:
    """The committed stand-ins of the three original checkpoints, converted by hub_upload.py."""
    import hub_upload

    folder = tmp_path_factory.mktemp("converted") / "turkish-clip"
    argv = ["convert", "--output", str(folder), "--text-model", str(fixtures_dir / "tf_distilbert")]
    argv += ["--head", str(fixtures_dir / "head_tiny.h5"), "--clip", str(tiny_clip_archive.path)]
    assert hub_upload.main(argv) == 0
    return folder


class _RouteHandler(BaseHTTPRequestHandler):
    """Answers each GET with the route registered for its path, or 404."""

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        try:
            if route is None:
                self.send_error(404)
            else:
                route(self)
        except OSError:
            pass  # the client went away, as a client with a deadline does

    def log_message(self, *args) -> None:
        pass


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 with `routes`: path -> function(handler)."""

    server: ThreadingHTTPServer
    routes: dict
    stop: threading.Event

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def http_server():
    """A real local HTTP server; `stop` is set at teardown so that slow routes can end."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RouteHandler)
    server.daemon_threads = True
    server.routes = {}
    local = LocalServer(server=server, routes=server.routes, stop=threading.Event())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield local
    local.stop.set()
    server.shutdown()
    server.server_close()


class FakeHfApi:
    """Records the calls push makes, and the files each commit sends (path in repo -> content,
    read when the commit is made); `upload_error` makes create_commit raise it."""

    instances: list[FakeHfApi] = []
    upload_error: Exception | None = None

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[str, tuple, dict]] = []
        self.commits: list[dict[str, bytes]] = []
        FakeHfApi.instances.append(self)

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def create_branch(self, *args, **kwargs):
        self.calls.append(("create_branch", args, kwargs))

    def create_commit(self, **kwargs):
        self.calls.append(("create_commit", (), kwargs))
        if FakeHfApi.upload_error is not None:
            raise FakeHfApi.upload_error
        sent = {}
        for operation in kwargs["operations"]:
            with operation.as_file() as file:
                sent[operation.path_in_repo] = file.read()
        self.commits.append(sent)
        return SimpleNamespace(commit_url="https://huggingface.co/me/tr-clip/commit/abc")


@pytest.fixture
def fake_api(monkeypatch) -> type[FakeHfApi]:
    FakeHfApi.instances = []
    FakeHfApi.upload_error = None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model folder with its float32 and int8 ONNX export; copy it before changing it."""
    from builders import save_tiny_model_folder

    from conversion.onnx_export import export_onnx

    folder = save_tiny_model_folder(tmp_path_factory.mktemp("onnx") / "model")
    export_onnx(folder, int8=True)
    return folder


@pytest.fixture(scope="module")
def restore_library_logging():
    """cli.main quiets transformers and the Hub for the whole process; modules that run it use
    this, so that the other test modules find the libraries' defaults."""
    import huggingface_hub.utils
    import huggingface_hub.utils.logging
    import transformers.utils.logging

    verbosity = transformers.utils.logging.get_verbosity()
    hub_verbosity = huggingface_hub.utils.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    hub_bars = not huggingface_hub.utils.are_progress_bars_disabled()
    yield
    transformers.utils.logging.set_verbosity(verbosity)
    huggingface_hub.utils.logging.set_verbosity(hub_verbosity)
    if bars:
        transformers.utils.logging.enable_progress_bar()
    if hub_bars:
        huggingface_hub.utils.enable_progress_bars()


@pytest.fixture
def one_thread():
    """Tiny models run faster on one torch thread than on contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
