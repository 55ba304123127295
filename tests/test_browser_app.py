"""The browser app end to end: ``cmr-search demo``, then Chromium driving the real server.

A module fixture runs ``cmr-search demo --no-serve`` over a small phantom
archive (generation, catalog, reports, the shipped default model, previews
and the FAISS index), starts the app with uvicorn on a free loopback port, and
Playwright drives Debian's Chromium against it. Every request the browser
makes is checked to stay on 127.0.0.1. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from PIL import Image
from playwright.sync_api import Browser, Page, Route, sync_playwright
from typer.testing import CliRunner

from cmr_search.cli import app as cli_app
from cmr_search.settings import PROJECT_ROOT, Settings, resolve_settings
from search_app.app import create_app
from search_app.demo import MARKER_FILE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
# Without these switches Chromium contacts Google services at start-up.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DEMO_STUDIES = 11
DEMO_SEED = 11
QUERY = "dilated LV with reduced EF"
TIMEOUT_MS = 30_000


@dataclass
class LiveApp:
    """The demo data and the URL of the server that serves it."""

    settings: Settings
    base_url: str
    demo_output: str


@dataclass
class RequestLog:
    """Hosts of every request the browser made, and the requests blocked for leaving loopback."""

    hosts: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def run_demo(data_dir: Path) -> str:
    """Run ``cmr-search demo --no-serve`` and return its output."""
    arguments = ["demo", "--no-serve", "--data-dir", str(data_dir), "--studies", str(DEMO_STUDIES), "--seed", str(DEMO_SEED)]
    result = CliRunner().invoke(cli_app, arguments)
    assert result.exit_code == 0, f"cmr-search demo failed:\n{result.output}\n{result.exception!r}"
    return result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium`")
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    output = run_demo(data_dir)
    settings = resolve_settings(data_dir, f"sqlite:///{data_dir / 'catalog.sqlite'}")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 60 s")
        time.sleep(0.05)
    try:
        yield LiveApp(settings=settings, base_url=f"http://127.0.0.1:{port}", demo_output=output)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Browser, live_app: LiveApp) -> Iterator[tuple[Page, RequestLog]]:
    """A fresh page whose requests are recorded; any request off loopback is blocked."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    log = RequestLog()

    def guard(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        log.hosts.append(host)
        if host == "127.0.0.1":
            route.continue_()
        else:
            log.blocked.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page, log
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def card_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#results .cards > li", "items => items.map(item => item.id)")


def loaded_images(page: Page, selector: str) -> list[dict[str, object]]:
    """Return src, complete and naturalWidth of the images that ``selector`` matches."""
    return page.eval_on_selector_all(
        selector,
        "images => images.map(image => ({src: image.currentSrc, complete: image.complete, width: image.naturalWidth}))",
    )


def wait_for_images(page: Page, selector: str) -> None:
    page.wait_for_function(
        "selector => [...document.querySelectorAll(selector)].every(image => image.complete && image.naturalWidth > 0)",
        arg=selector,
    )


def webp_frame_count(page: Page, url: str) -> int:
    response = page.request.get(url)
    assert response.status == 200
    assert response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.body())) as image:
        assert image.format == "WEBP"
        return getattr(image, "n_frames", 1)


def mark_document(page: Page) -> None:
    """Set a variable that survives htmx swaps but not a full page load."""
    page.evaluate("window.__sameDocument = true")


def is_same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def search(page: Page, query: str) -> None:
    page.fill("#q", query)
    with page.expect_response(lambda response: "/results?" in response.url):
        page.press("#q", "Enter")
    page.wait_for_selector("#results .cards > li")


def test_demo_prepared_archive(live_app: LiveApp) -> None:
    marker = json.loads((live_app.settings.data_dir / MARKER_FILE).read_text())

    assert marker == {"studies": DEMO_STUDIES, "seed": DEMO_SEED}
    assert any(live_app.settings.preview_dir.rglob("*.webp"))
    assert any(live_app.settings.index_dir.iterdir())


def test_search_shows_looping_previews(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, log = browser_page
    page.goto(live_app.base_url + "/")
    mark_document(page)

    search(page, QUERY)

    assert is_same_document(page), "the search reloaded the page instead of swapping the results"
    assert parse_qs(urlsplit(page.url).query)["q"] == [QUERY]
    assert len(card_ids(page)) == 10
    first_card_images = "#results .cards > li:first-child img"
    wait_for_images(page, first_card_images)
    images = loaded_images(page, first_card_images)
    assert images
    for image in images:
        assert image["width"] > 0
        assert webp_frame_count(page, str(image["src"])) > 1
    assert "Model trained on synthetic phantom data only" in page.inner_text("#results")
    page.wait_for_function("() => document.getElementById('results-announcement').textContent.includes('ranked for')")
    screenshot(page, "search-results")
    assert log.blocked == []
    assert set(log.hosts) == {"127.0.0.1"}


def test_study_page_and_back(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, log = browser_page
    page.goto(live_app.base_url + "/")
    search(page, QUERY)
    results_url = page.url
    first_cards = card_ids(page)

    page.click("#results .cards > li:first-child h3 a")
    page.wait_for_selector("h1")

    assert re.fullmatch(r".*/studies/\d+", page.url)
    wait_for_images(page, ".views-grid img")
    cine_views = loaded_images(page, ".views-grid img[data-kind='cine']")
    assert len(cine_views) >= 2
    for image in cine_views:
        assert webp_frame_count(page, str(image["src"])) > 1
    text = page.inner_text("main")
    assert "StudyInstanceUID" in text
    assert "Accession" in text
    assert "IMPRESSION" in text.upper()
    assert "slices ×" in text
    assert page.locator("#similar .cards > li").count() > 0
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy-target='study-instance-uid']")
    page.wait_for_function("() => document.querySelector(\"button[data-copy-target='study-instance-uid']\").textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.inner_text("#study-instance-uid")
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)+", copied)
    screenshot(page, "study-page")

    page.go_back()
    page.wait_for_selector("#results .cards > li")

    assert page.url == results_url
    assert card_ids(page) == first_cards
    assert page.input_value("#q") == QUERY
    assert log.blocked == []


def test_filter_updates_results_in_place(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, log = browser_page
    page.goto(live_app.base_url + "/")
    search(page, QUERY)
    mark_document(page)

    with page.expect_response(lambda response: "/results?" in response.url):
        page.select_option("#sex", "F")
    page.wait_for_function("() => new URLSearchParams(location.search).get('sex') === 'F'")

    assert is_same_document(page)
    facts = page.eval_on_selector_all("#results .cards .facts", "lists => lists.map(list => list.innerText)")
    assert facts, "no female study in the demo archive"
    for text in facts:
        assert "Female" in text
    screenshot(page, "search-filtered")

    filtered_ids = card_ids(page)
    page.goto(page.url)
    page.wait_for_selector("#results")
    assert card_ids(page) == filtered_ids
    assert page.input_value("#sex") == "F"
    assert log.blocked == []


def test_next_page_swaps_results(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, log = browser_page
    page.goto(live_app.base_url + "/")
    search(page, QUERY)
    first_page = card_ids(page)
    mark_document(page)

    with page.expect_response(lambda response: "/results?" in response.url):
        page.click("text=Next page")
    page.wait_for_function("() => new URLSearchParams(location.search).get('page') === '2'")

    assert is_same_document(page)
    second_page = card_ids(page)
    assert len(second_page) == DEMO_STUDIES - 10
    assert not set(first_page) & set(second_page)
    page.wait_for_function("() => document.activeElement.id === 'results-heading'")
    assert "Page 2 of 2" in page.inner_text("#results")
    screenshot(page, "search-page-2")
    assert log.blocked == []


def test_example_query_runs_search(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, log = browser_page
    page.goto(live_app.base_url + "/")

    with page.expect_response(lambda response: "/results?" in response.url):
        page.click("a.example-query >> text=pericardial effusion")
    page.wait_for_selector("#results .cards > li")

    assert page.input_value("#q") == "pericardial effusion"
    assert parse_qs(urlsplit(page.url).query)["q"] == ["pericardial effusion"]
    assert log.blocked == []


def test_keyboard_skip_link_and_labels(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, _log = browser_page
    page.goto(live_app.base_url + "/")

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    unlabeled = page.evaluate(
        "[...document.querySelectorAll('input, select')].filter(control => control.labels.length === 0).map(control => control.name)"
    )
    assert unlabeled == []

    page.focus("#q")
    page.keyboard.type("hypertrophic cardiomyopathy")
    with page.expect_response(lambda response: "/results?" in response.url):
        page.keyboard.press("Enter")
    page.wait_for_selector("#results .cards > li")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#results .cards') !== null"):
            break
    focused = page.evaluate("document.activeElement.getAttribute('href') || ''")
    assert re.fullmatch(r"/studies/\d+", focused)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/studies/\d+$"))


def test_cine_loops_pause_and_play(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, _log = browser_page
    page.goto(live_app.base_url + "/")
    search(page, QUERY)
    wait_for_images(page, "#results img.cine")
    moving = "document.querySelectorAll('img.cine:not([hidden])').length"
    still = "document.querySelectorAll('canvas.frozen-cine').length"
    shown = page.evaluate(moving)

    page.click("#motion-toggle")

    assert page.evaluate(still) == shown
    assert page.evaluate(moving) == 0
    assert page.get_attribute("#motion-toggle", "aria-pressed") == "true"
    page.reload()
    page.wait_for_selector("#results .cards > li")
    page.wait_for_function(f"() => {still} === {shown}")
    page.click("#motion-toggle")
    assert page.evaluate(still) == 0
    assert page.evaluate(moving) == shown


def test_pause_toggle_after_history_back(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, _log = browser_page
    page.goto(live_app.base_url + "/")
    search(page, QUERY)
    wait_for_images(page, "#results img.cine")
    search(page, "pericardial effusion")
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'pericardial effusion'")

    page.go_back()
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('q') === {QUERY!r}")
    page.wait_for_selector("#results .cards > li")
    before = page.get_attribute("#motion-toggle", "aria-pressed")
    page.click("#motion-toggle")

    after = page.get_attribute("#motion-toggle", "aria-pressed")
    assert before in ("true", "false")
    assert after == ("false" if before == "true" else "true")


def test_reduced_motion_starts_paused(chromium: Browser, live_app: LiveApp) -> None:
    context = chromium.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        page.goto(live_app.base_url + "/?" + f"q={QUERY}")
        page.wait_for_selector("#results .cards > li")

        page.wait_for_function("() => document.querySelectorAll('canvas.frozen-cine').length > 0")
        assert page.evaluate("document.querySelectorAll('img.cine:not([hidden])').length") == 0
        assert page.inner_text("#motion-toggle") == "Play cine loops"
    finally:
        context.close()


def test_error_pages_in_browser(browser_page: tuple[Page, RequestLog], live_app: LiveApp) -> None:
    page, log = browser_page

    response = page.goto(live_app.base_url + "/studies/987654321")

    assert response is not None
    assert response.status == 404
    assert "Study not found" in page.inner_text("main")
    assert "Traceback" not in page.content()
    screenshot(page, "study-not-found")
    assert log.blocked == []


def test_demo_rerun_reuses_data(live_app: LiveApp, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = live_app.settings.data_dir
    archive_files = sorted(path.name for path in (data_dir / "demo-archive").rglob("*"))

    with caplog.at_level("INFO"):
        run_demo(data_dir)

    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "reusing the phantom archive" in messages
    assert re.search(r"catalog: 0 files read, \d+ unchanged", messages)
    assert sorted(path.name for path in (data_dir / "demo-archive").rglob("*")) == archive_files


def test_demo_rejects_other_parameters(live_app: LiveApp, caplog: pytest.LogCaptureFixture) -> None:
    arguments = ["demo", "--no-serve", "--data-dir", str(live_app.settings.data_dir), "--studies", str(DEMO_STUDIES + 1)]

    with caplog.at_level("ERROR"):
        result = CliRunner().invoke(cli_app, arguments)

    assert result.exit_code == 2
    assert f"Rerun with --studies {DEMO_STUDIES} --seed {DEMO_SEED}" in caplog.text
