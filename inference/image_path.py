"""Which of the four image paths `cli.py index` embeds with: torch or onnxruntime, float32 or int8.

The rule, from `benchmarks/indexing.py` (docs/indexing-speed.md has the figures): on a CPU,
onnxruntime int8 was the fastest image path end to end, then onnxruntime float32, and torch's
int8 did not beat torch float32 reliably. onnxruntime int8 is only ever chosen from files that
`hub_upload.py export-onnx --int8` kept, and it keeps a quantised tower only where its cosine to
float32 is at least `INT8_MIN_COSINE` (0.995) on its check images; the benchmark's own set stayed
above that too. Anything below it is never a default.

All four paths of one model folder give one index fingerprint (search/fingerprint.py hashes the
folder's checkpoint file), so an index can be updated with any of them.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from inference.loading import ModelSpec, choose_backend


@dataclass(frozen=True)
class ImagePath:
    backend: str  # "torch" or "onnx"
    int8: bool


def choose_image_path(name: str, backend: str | None = None, int8: bool = False) -> ImagePath:
    """The image path for embedding a folder with model `name` (a folder or a Hub id).

    `backend` or `int8`, where given, are honoured as `choose_backend` honours them. Otherwise:
    onnxruntime int8 where the folder has its verified quantised ONNX files and the model runs on
    a CPU, else onnxruntime float32 where it has those files, else torch float32 (Hub ids, GPUs,
    folders without ONNX files).
    """
    if backend is not None or int8:
        return ImagePath(choose_backend(name, backend, int8), int8)
    if not Path(name).expanduser().is_dir():
        return ImagePath("torch", False)  # a Hub id: finding its ONNX files costs a request
    if choose_backend(name, None, int8=True) == "onnx":
        return ImagePath("onnx", True)
    return ImagePath(choose_backend(name, None), False)


def fastest_image_spec(spec: ModelSpec) -> ModelSpec:
    """`spec` on the image path `choose_image_path` picks for it, unless it names a backend or
    int8 itself, or needs its own code (whose backends this project does not know)."""
    if spec.trust_remote_code or spec.backend is not None or spec.int8:
        return spec
    path = choose_image_path(spec.name)
    return replace(spec, backend=path.backend, int8=path.int8)
