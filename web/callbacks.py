"""What the page's buttons do, in plain Python: page values in, page values out, errors as text.

Every failure the user can cause comes back as a one-line message for the page, never as a
traceback; the model is reached only through web.engine.
"""

from pathlib import Path

from web.engine import AppInputError, AppModel, Match, classify, row_embedding, search_index
from web.thumbnails import ThumbnailFiles

ENSEMBLE_CHOICE = "Turkish template ensemble"
DEFAULT_CHOICE = "Default template"
MAX_LABELS = 100

# A gallery item: (absolute thumbnail URL, caption); the rows let a click find its image.
Results = tuple[list[tuple[str, str]], list[int], str]


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


def open_upload(app: AppModel, path: str | None, uploads: Path):
    """An uploaded file as an RGB image, through the project's loader and its pixel limit.

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
        return load_image(path, max_pixels=app.max_pixels)
    except (OSError, ValueError) as error:  # ImageLoadError is a ValueError
        # The upload's temporary path means nothing to the user; its file name does.
        message = " ".join(str(error).split()).replace(str(path), name)
        raise AppInputError(message) from None


def top_k_value(value: float | int | None, limit: int) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise AppInputError(f"the number of results must be a number, got {value!r}") from None
    if k < 1:
        raise AppInputError(f"the number of results must be at least 1, got {k}")
    return min(k, limit)


def search_text(
    app: AppModel, files: ThumbnailFiles, query: str | None, top_k, base_url: str
) -> Results:
    return _guarded(lambda: _text_results(app, files, query, top_k, base_url))


def search_upload(
    app: AppModel, files: ThumbnailFiles, path: str | None, uploads: Path, top_k, base_url: str
) -> Results:
    def run() -> Results:
        query = app.embed_image(open_upload(app, path, uploads))
        return _results(files, search_index(app, query, _k(app, top_k)), base_url)

    return _guarded(run)


def search_like(
    app: AppModel, files: ThumbnailFiles, rows: list[int], clicked: int, top_k, base_url: str
) -> Results:
    def run() -> Results:
        if not 0 <= clicked < len(rows):
            raise AppInputError("that result is no longer shown; search again")
        query = row_embedding(app, rows[clicked])
        return _results(files, search_index(app, query, _k(app, top_k)), base_url)

    return _guarded(run)


def classify_upload(
    app: AppModel, path: str | None, uploads: Path, labels_text: str | None, choice: str | None
) -> tuple[dict[str, float] | None, str]:
    try:
        labels = parse_labels(labels_text)
        templates = choose_templates(app, choice)
        image = open_upload(app, path, uploads)
        return classify(app, image, labels, templates), ""
    except AppInputError as error:
        return None, f"**Error:** {error}"
    except (TypeError, ValueError) as error:  # labels the tokenizer refuses
        return None, f"**Error:** {' '.join(str(error).split())}"


def preview_upload(app: AppModel, path: str | None, uploads: Path):
    """The uploaded photo as the model will see it (before cropping), or the reason it cannot."""
    if not path:
        return None, ""
    try:
        return open_upload(app, path, uploads), ""
    except AppInputError as error:
        return None, f"**Error:** {error}"


def _text_results(app: AppModel, files: ThumbnailFiles, query, top_k, base_url) -> Results:
    text = (query or "").strip()
    if not text:
        raise AppInputError("type what to look for, e.g. sahilde koşan bir köpek")
    k = _k(app, top_k)
    return _results(files, search_index(app, app.embed_text(text), k), base_url)


def _k(app: AppModel, top_k) -> int:
    return top_k_value(top_k, len(app.index.files))


def _results(files: ThumbnailFiles, matches: list[Match], base_url: str) -> Results:
    items = [
        (base_url + files.url(match.path), f"{match.score:.4f} · {match.path}") for match in matches
    ]
    return items, [match.row for match in matches], ""


def _guarded(run) -> Results:
    try:
        return run()
    except (AppInputError, TypeError, ValueError) as error:
        return [], [], f"**Error:** {' '.join(str(error).split())}"
