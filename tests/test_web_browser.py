"""The page in a real browser (Playwright driving Debian's Chromium) on a tiny random model and
a generated photo folder. Screenshots of each tab go to tests/artifacts/ (git-ignored)."""

import re
from pathlib import Path

import pytest
from web_setup import PHOTOS, corrupt_jpeg, indexed_folder, load_for_page, serve_page

from web.thumbnails import thumbnail_id

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIMEOUT_MS = 60_000  # two shared CPU cores: generous, only reached when something is wrong
CAPTION = re.compile(r"^(-?\d\.\d{4}) · (.+)$")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    _, photos, index = indexed_folder(base)
    (base / "secret.txt").write_text("SECRET-CONTENT-1234")
    running = serve_page(load_for_page(index))
    yield running, photos, base
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    """A fresh tab on the page; any request that leaves the server fails the test."""
    running = site[0]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    outside = []

    def only_local(route) -> None:
        if route.request.url.startswith(running.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    tab = context.new_page()
    tab.goto(running.url)
    tab.wait_for_selector("#query textarea")
    yield tab
    context.close()
    assert outside == [], f"the page reached outside the server: {outside}"


def screenshot(tab, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def results(tab, expected: int) -> list[tuple[float, str]]:
    """(score, path) of each thumbnail once `expected` have loaded as images."""
    tab.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#results img')];"
        " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=expected,
    )
    captions = tab.locator("#results .caption-label").all_inner_texts()
    parsed = [CAPTION.match(caption.strip()) for caption in captions]
    return [(float(match[1]), match[2]) for match in parsed]


def search(tab, query: str) -> None:
    tab.fill("#query textarea", query)
    tab.click("#search-button")


def test_text_query_shows_thumbnails(page) -> None:
    search(page, "sahilde koşan bir köpek")
    shown = results(page, len(PHOTOS))
    assert sorted(path for _, path in shown) == sorted(PHOTOS)
    scores = [score for score, _ in shown]
    assert scores == sorted(scores, reverse=True)
    screenshot(page, "search")


def test_uploaded_photo_finds_itself_first(page, site) -> None:
    photos = site[1]
    page.set_input_files("#similar-upload input[type=file]", str(photos / "tatil/sahil.png"))
    page.wait_for_function(
        "() => (document.querySelector('#results .caption-label') || {}).innerText"
        " === '1.0000 · tatil/sahil.png'"
    )
    assert results(page, len(PHOTOS))[0] == (1.0, "tatil/sahil.png")


def test_clicking_a_result_shows_similar_photos(page) -> None:
    search(page, "orman")
    third = results(page, len(PHOTOS))[2][1]
    page.locator("#results .thumbnail-item").nth(2).click()
    page.wait_for_function(
        "path => (document.querySelector('#results .caption-label') || {}).innerText"
        " === '1.0000 · ' + path",
        arg=third,
    )
    similar = results(page, len(PHOTOS))
    assert similar[0] == (1.0, third)  # the photo itself, then the others by similarity
    scores = [score for score, _ in similar]
    assert scores == sorted(scores, reverse=True) and all(score < 1.0 for score in scores[1:])


def shown_paths(tab, expected: list[str]) -> list[tuple[float, str]]:
    """The results once exactly `expected` (sorted paths) are shown, loaded as images: the grid
    of the previous search may still be on the page when the new one is asked for."""
    tab.wait_for_function(
        "want => { const got = [...document.querySelectorAll('#results .caption-label')]"
        ".map(c => c.innerText.split(' · ').slice(1).join(' · ')).sort();"
        " return JSON.stringify(got) === JSON.stringify(want); }",
        arg=sorted(expected),
    )
    return results(tab, len(expected))


def test_folder_and_type_filters_narrow_the_results(page) -> None:
    page.get_by_text("Filters").click()
    page.fill("#folder textarea", "tatil")
    search(page, "deniz")
    shown = shown_paths(page, ["tatil/sahil.png", "tatil/şehir gece.jpg"])
    assert [score for score, _ in shown] == sorted((s for s, _ in shown), reverse=True)
    page.fill("#folder textarea", "")
    page.fill("#type textarea", "jpg")
    search(page, "deniz")
    shown_paths(page, ["kedi.jpg", "tatil/şehir gece.jpg"])
    page.fill("#type textarea", "gif")
    search(page, "deniz")
    page.locator("#search-message").filter(has_text="no photo matches").wait_for()
    assert page.locator("#results img").count() == 0
    screenshot(page, "search-filters")


def test_a_bad_date_filter_is_a_message(page) -> None:
    page.get_by_text("Filters").click()
    page.fill("#taken-after textarea", "dün")
    search(page, "deniz")
    message = page.locator("#search-message")
    message.filter(has_text="taken_after").wait_for()
    assert "must be an ISO date" in message.inner_text()


def test_duplicates_tab_shows_the_indexs_groups(page, site) -> None:
    from search.photo_index import PhotoIndex

    groups = PhotoIndex.open(site[2] / "photos.index").duplicates(0.95)
    page.get_by_role("tab", name="Duplicates").click()
    page.click("#duplicates-button")
    message = page.locator("#duplicates-message")
    message.filter(has_text="groups of near-duplicates").wait_for()
    assert message.inner_text().startswith(f"{len(groups)} groups")
    photos = sum(len(group.photos) for group in groups)
    page.wait_for_function(
        "n => document.querySelectorAll('#duplicates .caption-label').length === n", arg=photos
    )
    captions = page.locator("#duplicates .caption-label").all_inner_texts()
    expected = [
        f"group {number} · {photo.score:.4f} · {photo.path}"
        for number, group in enumerate(groups, 1)
        for photo in group.photos
    ]
    assert [caption.rsplit(" · ", 2)[0] for caption in captions] == expected


def test_classify_shows_every_label_with_a_percentage(page, site) -> None:
    page.get_by_role("tab", name="Classify").click()
    page.set_input_files("#classify-upload input[type=file]", str(site[1] / "kedi.jpg"))
    page.wait_for_selector('#classify-upload [aria-label="kedi.jpg"]')  # uploaded
    page.fill("#labels textarea", "kedi, köpek, araba, İstanbul")
    page.get_by_label("Turkish template ensemble").check()
    page.click("#classify-button")
    page.wait_for_selector("#probabilities .confidence-set")
    rows = page.locator("#probabilities .confidence-set")
    shown = {}
    for i in range(rows.count()):
        label = rows.nth(i).locator(".text").inner_text()
        shown[label] = rows.nth(i).locator(".confidence").inner_text()
    assert set(shown) == {"kedi", "köpek", "araba", "İstanbul"}
    assert all(re.fullmatch(r"\d{1,3}%", value) for value in shown.values())
    assert 98 <= sum(int(value[:-1]) for value in shown.values()) <= 102  # rounded shares of 100
    screenshot(page, "classify")


def test_corrupt_upload_shows_an_error_message(page, tmp_path) -> None:
    page.get_by_role("tab", name="Classify").click()
    bad = corrupt_jpeg(tmp_path / "bozuk.jpg")
    page.set_input_files("#classify-upload input[type=file]", str(bad))
    page.wait_for_selector('#classify-upload [aria-label="bozuk.jpg"]')  # uploaded
    page.click("#classify-button")
    message = page.locator("#classify-message")
    message.filter(has_text="bozuk.jpg").wait_for()
    assert "Error: 'bozuk.jpg' is truncated or corrupt" in message.inner_text()
    assert "Traceback" not in page.content()
    screenshot(page, "classify-error")


def test_about_shows_model_and_index(page, site) -> None:
    page.get_by_role("tab", name="About").click()
    about = page.locator("#about")
    about.filter(has_text="Indexed images").wait_for()
    text = about.inner_text()
    assert f"Indexed images: {len(PHOTOS)}" in text and str(site[1].resolve()) in text
    screenshot(page, "about")


def test_several_tabs_query_at_once(browser, site) -> None:
    """Three tabs search at the same moment; each gets its full result grid."""
    running = site[0]
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    tabs = [context.new_page() for _ in range(3)]
    for tab in tabs:
        tab.goto(running.url)
        tab.wait_for_selector("#query textarea")
    for tab, query in zip(tabs, ["kedi", "deniz", "gece"]):
        tab.fill("#query textarea", query)
    for tab in tabs:
        tab.click("#search-button", no_wait_after=True)
    found = [results(tab, len(PHOTOS)) for tab in tabs]
    context.close()
    assert all(sorted(path for _, path in rows) == sorted(PHOTOS) for rows in found)


@pytest.mark.parametrize(
    "target",
    [
        "/thumbnail/../../secret.txt",
        "/thumbnail/%2e%2e/%2e%2e/secret.txt",
        "/thumbnail/{secret}",
        "/thumbnail/kedi.jpg",
        "/gradio_api/file={secret}",
        "/gradio_api/file={photo}",
    ],
)
def test_path_traversal_urls_return_no_file_content(browser, site, target) -> None:
    running, photos, base = site
    url = running.url + target.format(secret=base / "secret.txt", photo=photos / "kedi.jpg")
    context = browser.new_context()
    response = context.request.get(url)
    body = response.body()
    context.close()
    assert response.status in (403, 404)
    assert b"SECRET-CONTENT" not in body and (photos / "kedi.jpg").read_bytes()[:64] not in body


def test_listed_thumbnail_loads_in_the_browser(browser, site) -> None:
    context = browser.new_context()
    response = context.request.get(f"{site[0].url}/thumbnail/{thumbnail_id('kedi.jpg')}")
    assert response.status == 200 and response.headers["content-type"] == "image/jpeg"
    context.close()


def test_without_an_index_only_classify_is_shown(browser, site, tmp_path) -> None:
    from web.engine import load_app_model

    model_dir = site[1].parent / "model"
    app = load_app_model(str(model_dir), None, None)
    demo = [tmp_path / "myspc.jpeg"]
    demo[0].write_bytes((site[1] / "kedi.jpg").read_bytes())
    running = serve_page(app, demo)
    try:
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(running.url)
        tab.wait_for_selector("#classify-upload")
        names = tab.get_by_role("tab").all_inner_texts()
        assert [name.strip() for name in names] == ["Classify", "About"]
        assert tab.locator("#query").count() == 0
        tab.get_by_text("Demo photos").wait_for()
        tab.get_by_text("myspc.jpeg").first.click()  # the example fills the photo input
        tab.wait_for_selector('#classify-upload [aria-label="myspc.jpeg"]')
        tab.fill("#labels textarea", "kedi, köpek")
        tab.click("#classify-button")
        tab.wait_for_selector("#probabilities .confidence-set")
        labels = tab.locator("#probabilities .confidence-set .text").all_inner_texts()
        assert sorted(labels) == ["kedi", "köpek"]
        screenshot(tab, "classify-only")
        context.close()
    finally:
        running.stop()
