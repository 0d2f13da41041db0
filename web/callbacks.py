"""What the page's buttons do, in plain Python: page values in, page values out, errors as text.

Every failure the user can cause comes back as a one-line message for the page, never as a
traceback; the model and the index are reached only through the core (web.engine.AppModel).
"""

from pathlib import Path

from search.errors import SearchError
from search.filters import parse_filter
from search.photo_index import PhotoHit, check_score
from web.engine import AppInputError, AppModel
from web.errors import describe
from web.thumbnails import ThumbnailFiles

ENSEMBLE_CHOICE = "Turkish template ensemble"
DEFAULT_CHOICE = "Default template"
MAX_LABELS = 100
# The preview's longest side: the page shows it 240 pixels high.
PREVIEW_SIZE = 512

# A gallery item: (absolute thumbnail URL, caption); the ids let a click find its photo.
Results = tuple[list[tuple[str, str]], list[str], str]


def parse_labels(text: str | None) -> list[str]:
    """Comma-separated labels, trimmed, duplicates dropped, order kept."""
    labels = list(dict.fromkeys(part.strip() for part in (text or "").split(",")))
    labels = [label for label in labels if label]
    if not labels:
        raise AppInputError("type at least one label (comma-separated, e.g. kedi, köpek, araba)")
    if len(labels) > MAX_LABELS:
        raise AppInputError(f"{len(labels)} labels given, at most {MAX_LABELS} are allowed")
    return labels


def choose_templates(app: AppModel, choice: str | None) -> tuple[str, ...]:
    from turkish_clip import TURKISH_TEMPLATES

    if choice == ENSEMBLE_CHOICE:
        return tuple(TURKISH_TEMPLATES)
    if choice in (None, DEFAULT_CHOICE):
        return (app.model.config.default_template,)
    raise AppInputError(f"unknown template choice {choice!r}")


def open_upload(app: AppModel, path: str | None, uploads: Path, reduced_to: int | None = None):
    """An uploaded file as an RGB image, through the project's loader and its pixel limit;
    with `reduced_to`, a JPEG is decoded at a reduced size whose shorter side is at least that.

    Gradio's API lets a client name any server path as a file input; only files inside the
    upload folder `uploads` are opened, so the page cannot be made to read other files.
    """
    from turkish_clip.image_loading import load_image

    if not path:
        raise AppInputError("upload a photo first")
    name = Path(path).name
    if not Path(path).resolve().is_relative_to(Path(uploads).resolve()):
        raise AppInputError(f"{name!r} was not uploaded through the page")
    try:
        return load_image(path, max_pixels=app.max_pixels, draft_min_side=reduced_to)
    except (OSError, ValueError) as error:  # ImageLoadError is a ValueError
        # The upload's temporary path means nothing to the user; its file name does.
        message = " ".join(str(error).split()).replace(str(path), name)
        raise AppInputError(message) from None


def top_k_value(value: float | int | None) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise AppInputError(f"the number of results must be a number, got {value!r}") from None
    if k < 1:
        raise AppInputError(f"the number of results must be at least 1, got {k}")
    return k


def min_score_value(value: float | int | None) -> float | None:
    """The page's threshold; -1 (the slider's left end) or nothing means none."""
    if value is None or value == "":
        return None
    try:
        score = check_score(float(value), "the minimum score")
    except (TypeError, ValueError):
        raise AppInputError(f"the minimum score must be a number, got {value!r}") from None
    return None if score <= -1 else score


def search_text(
    app: AppModel,
    files: ThumbnailFiles,
    query: str | None,
    top_k,
    base_url: str,
    filters: dict | None = None,
    min_score=None,
) -> Results:
    def run() -> Results:
        text = (query or "").strip()
        if not text:
            raise AppInputError("type what to look for, e.g. sahilde koşan bir köpek")
        return _search(app, files, app.query(text=text), top_k, base_url, filters, min_score)

    return _guarded(run)


def search_upload(
    app: AppModel,
    files: ThumbnailFiles,
    path: str | None,
    uploads: Path,
    top_k,
    base_url: str,
    filters: dict | None = None,
    min_score=None,
) -> Results:
    def run() -> Results:
        query = app.query(image=open_upload(app, path, uploads))
        return _search(app, files, query, top_k, base_url, filters, min_score)

    return _guarded(run)


def search_like(
    app: AppModel,
    files: ThumbnailFiles,
    shown: list[str],
    clicked: int,
    top_k,
    base_url: str,
    filters: dict | None = None,
    min_score=None,
) -> Results:
    """Similar photos: the clicked result's own embedding as the query."""

    def run() -> Results:
        if not 0 <= clicked < len(shown):
            raise AppInputError("that result is no longer shown; search again")
        query = app.query(image_id=shown[clicked])
        return _search(app, files, query, top_k, base_url, filters, min_score)

    return _guarded(run)


def find_duplicates(
    app: AppModel, files: ThumbnailFiles, threshold, base_url: str
) -> tuple[list[tuple[str, str]], str]:
    """Gallery items of every group of near-copies (each caption names its group, score, size
    and date), and a summary line; nothing is deleted."""
    try:
        groups = app.photos().duplicates(check_score(float(threshold), "the threshold"))
    except (TypeError, ValueError) as error:
        return [], f"**Error:** {describe(error)}"
    items = []
    for number, group in enumerate(groups, 1):
        for photo in group.photos:
            caption = (
                f"group {number} · {photo.score:.4f} · {photo.path} · {photo.size:,} bytes"
                f" · {photo.taken or 'no date'}"
            )
            items.append((base_url + files.url(photo.path), caption))
    return items, f"{len(groups)} groups of near-duplicates at threshold {float(threshold):g}"


def classify_upload(
    app: AppModel, path: str | None, uploads: Path, labels_text: str | None, choice: str | None
) -> tuple[dict[str, float] | None, str]:
    try:
        labels = parse_labels(labels_text)
        templates = choose_templates(app, choice)
        image = open_upload(app, path, uploads)
        scores = app.label_scores(image, labels, templates)
        return {item["label"]: item["score"] for item in scores}, ""
    except (AppInputError, TypeError, ValueError) as error:  # labels the tokenizer refuses too
        return None, f"**Error:** {describe(error)}"


def preview_upload(app: AppModel, path: str | None, uploads: Path):
    """The uploaded photo, at most PREVIEW_SIZE pixels a side and decoded reduced where the
    format allows (a 36 MP upload is never decoded or sent back in full), or why it cannot be."""
    if not path:
        return None, ""
    try:
        image = open_upload(app, path, uploads, reduced_to=PREVIEW_SIZE)
        image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        return image, ""
    except AppInputError as error:
        return None, f"**Error:** {error}"


def _search(
    app: AppModel, files: ThumbnailFiles, query, top_k, base_url: str, filters, min_score
) -> Results:
    hits = app.search(query, top_k_value(top_k), parse_filter(filters), min_score_value(min_score))
    return _results(files, hits, base_url)


def _results(files: ThumbnailFiles, hits: list[PhotoHit], base_url: str) -> Results:
    items = [(base_url + files.url(hit.path), f"{hit.score:.4f} · {hit.path}") for hit in hits]
    message = "" if hits else "no photo matches the query, filters and minimum score"
    return items, [hit.id for hit in hits], message


def _guarded(run) -> Results:
    try:
        return run()
    except (AppInputError, SearchError, TypeError, ValueError) as error:
        return [], [], f"**Error:** {describe(error)}"
