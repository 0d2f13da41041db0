"""The HTTP API, on the same FastAPI app as the page, over the same core (web.engine.AppModel).

    POST /api/search        JSON {"text" | "image_id" | "embedding", "k", "min_score", "filters"}
                            or multipart: an `image` file and the same fields
                            -> {"results": [{"id", "path", "score", "taken", "camera"}]}
    POST /api/classify      multipart: `image`, `labels` (a JSON list), optional `templates`
                            -> {"labels": [{"label", "score"}]}, best first
    POST /api/embed/text    JSON {"texts": [...]}       -> {"embeddings": [[...], ...]}
    POST /api/embed/image   multipart: `images` files   -> {"embeddings": [[...], ...]}
    GET  /api/photos/{id}   the photo's stored metadata

Results come in the order and with the scores `cli.py search --json` gives for the same query,
filters and threshold: both call `PhotoIndex.search`. Every error is JSON `{"error": "..."}`
with a 4xx status (413 for a body over its limit); the server keeps serving. FastAPI's own
OpenAPI page documents the endpoints at /api/docs.
"""

import json
import math
from collections.abc import Callable

from pydantic import BaseModel, Field

from search.errors import SearchError
from search.file_names import name_fields
from search.filters import parse_filter
from search.photo_index import check_count, check_score
from web.engine import AppModel
from web.errors import describe, status_of

# Limits: a JSON body, an uploaded image, all the images of one request, texts per request.
MAX_JSON_BYTES = 1 << 20
MAX_IMAGE_BYTES = 50 << 20
MAX_BODY_BYTES = 64 << 20
MAX_TEXTS = 256
MAX_IMAGES = 32
MAX_K = 1000
DEFAULT_K = 10
ENDPOINTS = ("search", "classify", "embed/text", "embed/image")


class ApiError(Exception):
    """An answer with a status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# Response models: what the OpenAPI page shows.


class Filters(BaseModel):
    taken_after: str | None = Field(None, description="ISO date: taken on or after it")
    taken_before: str | None = Field(None, description="ISO date: taken before it")
    camera: str | None = Field(None, description="part of the camera's make and model, any case")
    folder: str | None = Field(None, description="a folder of the indexed one (relative)")
    type: str | None = Field(None, description="file extension, e.g. jpg")


class SearchRequest(BaseModel):
    text: str | None = None
    image_id: str | None = Field(None, description="an indexed photo's id: similar photos")
    embedding: list[float] | None = Field(None, description="a query embedding of the model")
    k: int = DEFAULT_K
    min_score: float | None = None
    filters: Filters | None = None


class SearchResult(BaseModel):
    id: str
    path: str
    path_bytes: str | None = Field(None, description="base64 of a name that is not UTF-8")
    score: float
    taken: str | None
    camera: str | None


class SearchResponse(BaseModel):
    results: list[SearchResult]


class LabelScore(BaseModel):
    label: str
    score: float


class ClassifyResponse(BaseModel):
    labels: list[LabelScore]


class TextsRequest(BaseModel):
    texts: list[str]


class EmbeddingsResponse(BaseModel):
    embeddings: list[list[float]]


class Photo(BaseModel):
    id: str
    path: str
    size: int
    mtime_ns: int
    taken: str | None
    camera: str | None


class ErrorResponse(BaseModel):
    error: str


def _json_body(model: type[BaseModel]) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


def _multipart_body(fields: dict) -> dict:
    schema = {"type": "object", "properties": fields}
    return {"requestBody": {"content": {"multipart/form-data": {"schema": schema}}}}


FILE = {"type": "string", "format": "binary"}
ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 409, 413)}


def add_api(server, app: AppModel) -> None:
    """The /api routes on `server` (a FastAPI app), before the page is mounted at "/"."""
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    router = APIRouter(prefix="/api")

    async def answer(request: Request, handle: Callable[[dict], dict]) -> JSONResponse:
        """Reads the body within its limit, then runs `handle` on its fields in a worker
        thread (the model is slow); every failure becomes a JSON error."""
        try:
            fields = await _read_fields(request)
            return JSONResponse(await run_in_threadpool(handle, fields))
        except ApiError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except SearchError as error:
            return JSONResponse({"error": describe(error)}, status_code=status_of(error))
        except (TypeError, ValueError) as error:  # texts or templates the processor refuses
            return JSONResponse({"error": describe(error)}, status_code=400)

    @router.post(
        "/search",
        response_model=SearchResponse,
        responses=ERRORS,
        openapi_extra=_json_body(SearchRequest)
        | {"x-multipart": "or multipart/form-data with an `image` file and the same fields"},
    )
    async def search(request: Request):
        return await answer(request, lambda fields: search_photos(app, fields))

    @router.post(
        "/classify",
        response_model=ClassifyResponse,
        responses=ERRORS,
        openapi_extra=_multipart_body(
            {"image": FILE, "labels": {"type": "string"}, "templates": {"type": "string"}}
        ),
    )
    async def classify(request: Request):
        return await answer(request, lambda fields: classify_image(app, fields))

    @router.post(
        "/embed/text",
        response_model=EmbeddingsResponse,
        responses=ERRORS,
        openapi_extra=_json_body(TextsRequest),
    )
    async def embed_text(request: Request):
        return await answer(request, lambda fields: embed_texts(app, fields))

    @router.post(
        "/embed/image",
        response_model=EmbeddingsResponse,
        responses=ERRORS,
        openapi_extra=_multipart_body({"images": {"type": "array", "items": FILE}}),
    )
    async def embed_image(request: Request):
        return await answer(request, lambda fields: embed_images(app, fields))

    @router.get("/photos/{photo_id}", response_model=Photo, responses=ERRORS)
    def photo(photo_id: str):
        try:
            fields = app.photos().photo(photo_id)
            return JSONResponse(fields | name_fields(fields["path"]))
        except SearchError as error:
            return JSONResponse({"error": describe(error)}, status_code=status_of(error))

    # Anything else under /api/ answers in JSON too, not with the page's HTML.
    @router.api_route(
        "/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    def elsewhere(rest: str, request: Request):
        photo = rest.startswith("photos/") and "/" not in rest.removeprefix("photos/")
        if rest in ENDPOINTS or photo:
            message = f"{request.method} is not allowed on /api/{rest}"
            return JSONResponse({"error": message}, status_code=405)
        return JSONResponse({"error": f"no endpoint /api/{rest}"}, status_code=404)

    server.include_router(router)


# Reading requests.


async def _read_fields(request) -> dict:
    """The request's fields: a JSON object's, or a multipart form's (files as bytes, under
    "_files": name -> [(file name, bytes)])."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = kind == "multipart/form-data"
    if kind not in ("application/json", "multipart/form-data"):
        raise ApiError(415, "send JSON (application/json) or a multipart/form-data upload")
    limit = MAX_BODY_BYTES if multipart else MAX_JSON_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is over the limit of {limit:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the request body is over the limit of {limit:,} bytes")
    request._body = bytes(body)  # the form parser below reads it from here
    if not multipart:
        try:
            fields = json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
            raise ApiError(400, f"the body is not valid JSON: {error}") from None
        if not isinstance(fields, dict):
            raise ApiError(400, "the body must be a JSON object")
        return fields
    return await _form_fields(request)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


async def _form_fields(request) -> dict:
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException

    try:
        form = await request.form(max_files=MAX_IMAGES, max_fields=100)
    except HTTPException as error:
        raise ApiError(400, f"the multipart body cannot be read: {error.detail}") from None
    fields: dict = {"_files": {}}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            if len(data) > MAX_IMAGE_BYTES:
                raise ApiError(413, f"{value.filename!r} is over the limit of {MAX_IMAGE_BYTES:,}")
            fields["_files"].setdefault(name, []).append((value.filename or name, data))
        else:
            fields[name] = value
    return fields


def _form_json(fields: dict, name: str):
    """A form field that holds JSON (a list of labels, the filters); plain text stays text."""
    value = fields.get(name)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _form_number(fields: dict, name: str, kind: type):
    value = fields.get(name)
    if not isinstance(value, str):
        return value
    try:
        return kind(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a number, got {value!r}") from None


def _images(app: AppModel, fields: dict, name: str) -> list:
    from turkish_clip.image_loading import load_image

    images = []
    for file_name, data in fields.get("_files", {}).get(name, []):
        try:
            images.append(load_image(data, max_pixels=app.max_pixels))
        except (OSError, ValueError) as error:
            message = " ".join(str(error).split())
            raise ApiError(400, f"{file_name!r} is not a usable image: {message}") from None
    return images


# The endpoints' work, in plain Python.


def search_photos(app: AppModel, fields: dict) -> dict:
    multipart = "_files" in fields
    if multipart:
        fields = dict(fields)
        fields["k"] = _form_number(fields, "k", int)
        fields["min_score"] = _form_number(fields, "min_score", float)
        fields["filters"] = _form_json(fields, "filters")
        fields["embedding"] = _form_json(fields, "embedding")
    known = {"text", "image_id", "embedding", "k", "min_score", "filters", "_files"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}")
    images = _images(app, fields, "image") if multipart else []
    if len(images) > 1:
        raise ApiError(400, "send one image to search with")
    k = check_count(fields.get("k", DEFAULT_K))
    if k > MAX_K:
        raise ApiError(400, f"k must be at most {MAX_K}, got {k}")
    min_score = fields.get("min_score")
    if min_score is not None:
        min_score = check_score(min_score, "min_score")
    photo_filter = parse_filter(fields.get("filters"))
    query = app.query(
        text=fields.get("text"),
        image=images[0] if images else None,
        image_id=fields.get("image_id"),
        embedding=fields.get("embedding"),
    )
    hits = app.search(query, k, photo_filter, min_score)
    return {"results": [app.result_fields(hit) for hit in hits]}


def classify_image(app: AppModel, fields: dict) -> dict:
    from turkish_clip.configuration_turkish_clip import check_templates

    if "_files" not in fields:
        raise ApiError(400, "send a multipart/form-data upload with an `image` file")
    images = _images(app, fields, "image")
    if len(images) != 1:
        raise ApiError(400, "send exactly one `image` file")
    labels = _form_json(fields, "labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ApiError(400, 'labels must be a JSON list of strings, e.g. ["kedi", "köpek"]')
    labels = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if not labels or len(labels) > MAX_TEXTS:
        raise ApiError(400, f"give 1 to {MAX_TEXTS} non-empty labels")
    templates = _form_json(fields, "templates")
    if templates is None:
        templates = (app.model.config.default_template,)
    elif isinstance(templates, str):
        templates = (templates,)
    elif not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise ApiError(400, "templates must be a template string or a JSON list of them")
    scores = app.label_scores(images[0], labels, tuple(check_templates(list(templates))))
    return {"labels": sorted(scores, key=lambda item: -item["score"])}


def embed_texts(app: AppModel, fields: dict) -> dict:
    texts = fields.get("texts")
    if set(fields) - {"texts"}:
        raise ApiError(400, f"unknown field {sorted(set(fields) - {'texts'})[0]!r}")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ApiError(400, 'texts must be a non-empty JSON list of strings, e.g. ["kedi"]')
    if len(texts) > MAX_TEXTS:
        raise ApiError(413, f"{len(texts)} texts sent, at most {MAX_TEXTS} are allowed")
    if not all(text.strip() for text in texts):
        raise ApiError(400, "texts must not be empty")
    return {"embeddings": _rows(app.embed_texts(texts))}


def embed_images(app: AppModel, fields: dict) -> dict:
    if "_files" not in fields:
        raise ApiError(400, "send a multipart/form-data upload with `images` files")
    images = _images(app, fields, "images")
    if not images:
        raise ApiError(400, "send at least one file as `images`")
    return {"embeddings": _rows(app.embed_images(images))}


def _rows(matrix) -> list[list[float]]:
    rows = matrix.astype(float).tolist()
    if not all(math.isfinite(value) for row in rows for value in row):
        raise ValueError("the model gave non-finite embeddings")
    return rows
