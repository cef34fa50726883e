"""The report in a real browser: headless Debian chromium driven by Playwright renders the
report of a tiny study without console errors, page errors or dialogs, shows every figure, runs
none of the injected markup, and leaves a full-page screenshot in runs/test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from report.test_report import EVIL_KEY, IMG, SCRIPT, tiny_study
from tunescope.report import write_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "runs" / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -c constraints.txt playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


def test_report_renders_in_chromium(browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = write_report(ARTIFACTS / "report.html", *tiny_study())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: problems.append(f"request: {r.url}")
            if not r.url.startswith("file://") else None)
    page.goto(path.as_uri(), wait_until="load")

    figures = page.locator("figure")
    n = figures.count()
    assert n >= 15
    for i in range(n):
        fig = figures.nth(i)
        kind = fig.get_attribute("class")
        if kind == "plot":
            svg = fig.locator("svg")
            assert svg.count() == 1
            box = svg.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50, i
            assert svg.locator("path, text").count() > 10
        else:
            assert kind == "heatmaps"
            tokens = fig.locator("span.tok")
            assert tokens.count() > 10 and tokens.first.is_visible()
        caption = fig.locator("figcaption")
        assert caption.count() == 1 and len(caption.inner_text()) > 40

    assert page.locator("img").count() == 0 and page.locator("[onerror]").count() == 0
    assert page.locator("script").count() == 0
    text = page.locator("body").inner_text()
    assert SCRIPT in text and IMG in text               # shown literally, as text
    assert EVIL_KEY in text
    assert "Different families: compare metrics, not weights." in text
    assert problems == []
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    page.close()
