"""A real browser (Playwright driving the system Chromium) uses the results page: the API-key link sets the cookie,
a text query and an image upload show thumbnails with scores, a click opens the viewer; screenshots are saved."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.serve.conftest import API_KEY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="system chromium is not installed")
def test_results_page_in_chromium(server, image_index, tmp_path):
    from playwright.sync_api import sync_playwright

    OUT = Path(os.environ.get("MMRANK_TEST_OUTPUT") or tmp_path)  # screenshots kept where CI asks
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{server}/?api_key={API_KEY}")  # sets the cookie, redirects to /
            assert page.url.rstrip("/") == server and "mmrank" in page.title()
            page.fill("#text", "a photo of a cat")
            page.click("#go")
            page.wait_for_selector(".card img")
            assert page.locator(".card").count() == 8  # the whole tiny index (k=12 asked)
            page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            assert "results for a text query" in page.inner_text("#status")
            page.screenshot(path=str(OUT / "serve_text_query.png"), full_page=True)

            page.fill("#text", "")
            page.set_input_files("#file", str(image_index.parent / "photos" / "rocket.jpg"))
            page.click("#go")
            page.wait_for_function("document.querySelector('#status').innerText.includes('an image query')")
            first = page.locator(".card .id").first.inner_text()
            assert "rocket.jpg" in first
            page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(OUT / "serve_image_query.png"), full_page=True)

            page.fill("#text", "as a pencil drawing")  # the image stays selected: a composed query
            page.click("#go")
            page.wait_for_function("document.querySelector('#status').innerText.includes('a composed query')")
            assert "cir-sum" in page.inner_text("#status")
            page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(OUT / "serve_composed_query.png"), full_page=True)

            page.locator(".card").first.click()
            page.wait_for_selector("#viewer img")
            page.screenshot(path=str(OUT / "serve_viewer.png"))
        finally:
            browser.close()
    assert (OUT / "serve_image_query.png").stat().st_size > 10_000
