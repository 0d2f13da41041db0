"""The Gradio page: Search (with an index), Classify, About."""

import shutil
import tempfile
from pathlib import Path

from web import callbacks
from web.engine import AppModel, index_summary
from web.thumbnails import ThumbnailFiles
from web.uploads import UsedUploads

DEFAULT_TOP_K = 12
MAX_TOP_K = 100
DEFAULT_LABELS = "kedi, köpek, araba, deniz, insan"
# Every 10 minutes, files the page made (uploads, previews) over an hour ago are deleted: a
# client that uploads without ever using the file would otherwise fill the disk. Examples stay.
CACHE_SWEEP = (600, 3600)


def build_page(app: AppModel, files: ThumbnailFiles | None, examples: list[Path]):
    """The page's Blocks; `files` is None without an index, and then only Classify is shown."""
    import gradio as gr

    used = UsedUploads(upload_folder())
    with gr.Blocks(title="Turkish CLIP", delete_cache=CACHE_SWEEP) as page:
        gr.Markdown("# Turkish CLIP")
        with gr.Tabs():
            if files is not None:
                with gr.Tab("Search", id="search"):
                    _search_tab(gr, app, files, used)
                with gr.Tab("Duplicates", id="duplicates"):
                    _duplicates_tab(gr, app, files)
            with gr.Tab("Classify", id="classify"):
                classify_upload = _classify_tab(gr, app, examples, used)
            with gr.Tab("About", id="about"):
                gr.Markdown(about_text(app), elem_id="about")
    # Gradio's copies of the examples are already there. Gradio's age sweep spares the files in
    # a component's keep_in_cache, but files given as examples of a gr.File never get there.
    classify_upload.keep_in_cache.update(used.protect_existing())
    return page


def _search_tab(gr, app: AppModel, files: ThumbnailFiles, used: UsedUploads) -> None:
    with gr.Row():
        query = gr.Textbox(
            label="Search in Turkish",
            placeholder="sahilde koşan bir köpek",
            elem_id="query",
            scale=5,
        )
        button = gr.Button("Search", variant="primary", elem_id="search-button", scale=1)
    with gr.Row():
        top_k = gr.Slider(1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="Results", scale=1)
        min_score = gr.Slider(
            -1, 1, value=-1, step=0.01, label="Minimum score", elem_id="min-score", scale=1
        )
        upload = gr.File(
            label="Find similar: upload a photo",
            file_types=["image"],
            type="filepath",
            height=110,
            elem_id="similar-upload",
            scale=1,
        )
    with gr.Accordion("Filters", open=False, elem_id="filters"), gr.Row():
        taken_after = gr.Textbox(
            label="Taken on or after", placeholder="2024-06-01", elem_id="taken-after"
        )
        taken_before = gr.Textbox(
            label="Taken before", placeholder="2024-09-01", elem_id="taken-before"
        )
        camera = gr.Textbox(label="Camera", placeholder="nikon", elem_id="camera")
        folder = gr.Textbox(label="Folder", placeholder="tatil/2024", elem_id="folder")
        kind = gr.Textbox(label="File type", placeholder="jpg", elem_id="type")
    message = gr.Markdown(elem_id="search-message")
    gallery = gr.Gallery(
        label="Results (click one for similar photos)",
        columns=4,
        allow_preview=False,
        object_fit="cover",
        elem_id="results",
    )
    shown = gr.State([])
    outputs = [gallery, shown, message]
    options = [top_k, taken_after, taken_before, camera, folder, kind, min_score]

    def filters(after, before, camera_text, folder_text, type_text) -> dict:
        values = (after, before, camera_text, folder_text, type_text)
        names = ("taken_after", "taken_before", "camera", "folder", "type")
        return dict(zip(names, values))

    # The parameters' names are those the page's "Use via API" shows for gradio_client.
    def by_text(
        query,
        k,
        taken_after,
        taken_before,
        camera,
        folder,
        file_type,
        min_score,
        request: gr.Request,
    ):
        chosen = filters(taken_after, taken_before, camera, folder, file_type)
        origin = page_origin(request)
        return callbacks.search_text(app, files, query, k, origin, chosen, min_score)

    def by_upload(
        photo,
        k,
        taken_after,
        taken_before,
        camera,
        folder,
        file_type,
        min_score,
        request: gr.Request,
    ):
        chosen = filters(taken_after, taken_before, camera, folder, file_type)
        origin = page_origin(request)
        try:
            return callbacks.search_upload(
                app, files, photo, upload_folder(), k, origin, chosen, min_score
            )
        finally:
            used.used(photo)

    def similar(
        ids, k, after, before, cam, sub, ext, least, event: gr.SelectData, request: gr.Request
    ):
        chosen = filters(after, before, cam, sub, ext)
        origin = page_origin(request)
        return callbacks.search_like(app, files, ids, event.index, k, origin, chosen, least)

    button.click(by_text, [query, *options], outputs)
    query.submit(by_text, [query, *options], outputs, api_visibility="private")  # as /by_text
    upload.upload(by_upload, [upload, *options], outputs)
    # A click on a shown result only: API clients search by image_id through /api/search.
    gallery.select(similar, [shown, *options], outputs, api_visibility="private")


def _duplicates_tab(gr, app: AppModel, files: ThumbnailFiles) -> None:
    gr.Markdown(
        "Groups of near-copies (resized, re-encoded, lightly cropped), largest file first, "
        "with size and date so you can choose which to keep. Nothing is deleted."
    )
    with gr.Row():
        threshold = gr.Slider(
            0.5, 1, value=0.95, step=0.005, label="Similarity threshold", elem_id="threshold"
        )
        button = gr.Button("Find duplicates", variant="primary", elem_id="duplicates-button")
    message = gr.Markdown(elem_id="duplicates-message")
    gallery = gr.Gallery(
        label="Duplicate groups", columns=4, allow_preview=False, elem_id="duplicates"
    )

    def duplicates(threshold, request: gr.Request):
        return callbacks.find_duplicates(app, files, threshold, page_origin(request))

    button.click(duplicates, [threshold], [gallery, message])


def _classify_tab(gr, app: AppModel, examples: list[Path], used: UsedUploads):
    """The Classify tab's components and events; gives its upload component."""
    with gr.Row():
        with gr.Column():
            upload = gr.File(
                label="Photo", file_types=["image"], type="filepath", elem_id="classify-upload"
            )
            shown = gr.Image(label="Preview", interactive=False, height=240)
        with gr.Column():
            labels = gr.Textbox(
                label="Labels (comma-separated)", value=DEFAULT_LABELS, elem_id="labels"
            )
            template = gr.Radio(
                [callbacks.DEFAULT_CHOICE, callbacks.ENSEMBLE_CHOICE],
                value=callbacks.DEFAULT_CHOICE,
                label=f"Prompt: {app.model.config.default_template!r}, or the ensemble of "
                "16 Turkish templates",
            )
            button = gr.Button("Classify", variant="primary", elem_id="classify-button")
    message = gr.Markdown(elem_id="classify-message")
    result = gr.Label(label="Probabilities", elem_id="probabilities")
    if examples:
        gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Demo photos")

    def classify(photo, labels, template):
        try:
            return callbacks.classify_upload(app, photo, upload_folder(), labels, template)
        finally:
            used.used(photo)

    def preview(photo):
        try:
            return callbacks.preview_upload(app, photo, upload_folder())
        finally:
            used.used(photo)

    upload.change(preview, [upload], [shown, message])
    button.click(classify, [upload, labels, template], [result, message])
    return upload


def about_text(app: AppModel) -> str:
    revision = app.revision or getattr(app.model.config, "_commit_hash", None) or "local files"
    lines = [
        f"- **Model:** `{app.source}`",
        f"- **Revision:** `{revision}`",
        f"- **Embedding size:** {app.model.config.projection_dim}",
    ]
    if app.index is not None:
        summary = index_summary(app)
        lines += [
            f"- **Index:** `{summary['folder']}` of `{summary['root']}`",
            f"- **Indexed images:** {summary['images']} ({summary['unreadable']} unreadable)",
            f"- **Last updated:** {summary['updated']} ({summary['age']} when the page started)",
        ]
    else:
        lines.append("- **Index:** none (start with `--index` to search photos)")
    return "\n".join(lines)


def upload_folder() -> Path:
    """Where Gradio keeps uploads (and example copies): the only files the callbacks open."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def page_origin(request) -> str:
    """The page's public origin (scheme, host, port), behind proxies too, for thumbnail URLs."""
    from gradio import route_utils

    call = request.request  # the HTTP request that queued this event
    return route_utils.get_root_url(call, route_utils.get_api_call_path(request=call), None)


def example_copies(photos: list[Path]) -> list[Path]:
    """Copies in a temporary folder: Gradio serves examples only from there or the working folder,
    and widening its allowed paths would expose a whole folder."""
    if not photos:
        return []
    folder = Path(tempfile.mkdtemp(prefix="turkish-clip-examples-"))
    return [Path(shutil.copy2(photo, folder / photo.name)) for photo in photos]
