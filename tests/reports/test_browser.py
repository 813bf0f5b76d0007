"""Reports in a real browser: Debian's chromium (headless, driven by Playwright), offline, from file:// URLs.

Each page type (run index, policy page, compare page) must load with no console or page errors and no request
beyond its own file, every image (PNG charts and animated GIF strips) must decode, and a policy called with HTML
and script must show as text without running. Screenshots go to ``$DOJO_SCREENSHOT_DIR`` (default: the test's
tmp dir). Skipped, with the reason, when chromium or the playwright package is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_runs import XSS_NAME

from dojo_bench.cli import main
from reports.report import policy_page

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI and containers run as root, where chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DOJO_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def pages(eval_run, xss_run, regressed_runs, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("browser")
    assert main(["report", str(eval_run), f"out={out / 'report'}"]) == 0
    assert main(["report", str(xss_run), f"out={out / 'xss'}"]) == 0
    base, new = regressed_runs
    assert main(["compare", str(base), str(new), f"out={out / 'compare'}"]) == 1  # the planted regression
    policy = sorted(p.name for p in (out / "report").glob("policy-*.html"))[0]
    return {
        "index": out / "report" / "index.html",
        "policy": out / "report" / policy,
        "compare": out / "compare" / "compare.html",
        "xss_index": out / "xss" / "index.html",
        "xss_policy": out / "xss" / policy_page(XSS_NAME),
    }


def open_offline(browser, path: Path, screenshot: Path | None = None):
    """Open ``path`` with every non-file request aborted; returns (page, problems) after it has loaded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    page = context.new_page()
    problems: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith("file://"):
            request_route.continue_()
        else:
            problems.append(f"request to {url}")
            request_route.abort()

    page.route("**/*", route)
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    return page, problems


MEDIA_CHECK = """() => ({
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 22), ok: i.complete && i.naturalWidth > 0})),
  videos: Array.from(document.querySelectorAll('video')).map(v => v.readyState),
})"""


@pytest.mark.parametrize("kind", ["index", "policy", "compare"])
def test_each_page_type_renders_offline_with_all_media(browser, pages, shots, kind):
    page, problems = open_offline(browser, pages[kind], shots / f"{kind}.png")
    media = page.evaluate(MEDIA_CHECK)
    page.context.close()
    assert problems == []
    assert media["images"], "every page type leads with a picture"
    assert all(image["ok"] for image in media["images"]), media["images"]
    assert all(state >= 2 for state in media["videos"])
    if kind == "policy":
        assert any(image["src"].startswith("data:image/gif") for image in media["images"])
    assert (shots / f"{kind}.png").stat().st_size > 0


@pytest.mark.parametrize("kind", ["xss_index", "xss_policy"])
def test_policy_names_with_script_show_as_text(browser, pages, shots, kind):
    page, problems = open_offline(browser, pages[kind], shots / f"{kind}.png")
    executed = page.evaluate("() => window.__xss")
    text = page.inner_text("body")
    links = page.evaluate("() => Array.from(document.querySelectorAll('nav a')).map(a => a.textContent)")
    page.context.close()
    assert problems == [] and executed is None
    assert XSS_NAME in text and XSS_NAME in links
