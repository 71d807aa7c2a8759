"""The page at ``/`` in a real browser (the system's chromium, headless, driven by playwright): upload a sample,
wait for the mask and the cut-out, check their pixels as the browser decoded them, keep a screenshot."""

from __future__ import annotations

import base64
import shutil

import cv2
import numpy as np
import pytest

from conftest import SAMPLES, needs_u2netp, run_cli

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")

from serving import running  # noqa: E402  (serving imports httpx: only once the skips above pass)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [needs_u2netp, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (CI installs Debian's)")]

#: Headless, and quiet: no sandbox (CI containers run as root), no GPU, nothing fetched from the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]

#: The pixels of a shown image, as the browser decoded them (a canvas of its natural size, as a PNG).
PIXELS = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  return canvas.toDataURL("image/png");
}"""


def _pixels(page, selector: str) -> np.ndarray:
    url = page.eval_on_selector(selector, PIXELS)
    data = base64.b64decode(url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_the_page_cuts_out_a_dropped_photo(tmp_path):
    sample = SAMPLES / "coins.png"
    done = run_cli("segment", str(sample), "-m", "otsu", "-o", str(tmp_path / "cli"))
    assert done.returncode == 0, done.stderr
    expected = cv2.imread(str(tmp_path / "cli" / "coins.png"), cv2.IMREAD_GRAYSCALE)
    image = cv2.imread(str(sample), cv2.IMREAD_GRAYSCALE)

    with running(home=tmp_path / "home") as server, sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(server.url + "/")
            page.wait_for_selector("#method option[value=otsu]", state="attached", timeout=30_000)
            page.wait_for_selector("#mode option[value=cutout]", state="attached", timeout=30_000)
            assert page.input_value("#method") == "cnn"  # the page's default for photos
            page.select_option("#method", "otsu")
            page.select_option("#mode", "cutout")
            page.set_input_files("#files", str(sample))
            page.wait_for_selector(".item[data-state=done] img.result", timeout=60_000)
            page.wait_for_function("() => [...document.images].every((i) => i.complete && i.naturalWidth)",
                                   timeout=30_000)
            mask = _pixels(page, ".item img.mask")
            result = _pixels(page, ".item img.result")
            links = page.eval_on_selector_all(".item a[download]", "(links) => links.map((a) => a.download)")
            screenshot = tmp_path / "serve-page.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    print(f"screenshot of the page: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert links == ["coins-mask.png", "coins-cutout.png"]
    assert mask.shape[:2] == expected.shape == (303, 384)
    grey = mask if mask.ndim == 2 else mask[..., 0]
    assert np.array_equal(grey, expected)  # the CLI's mask, pixel for pixel
    assert result.shape == (303, 384, 4)
    assert np.array_equal(result[..., 3], expected)  # the cut-out's alpha is that mask
    kept = result[..., 3] == 255
    assert kept.mean() > 0.2 and np.array_equal(result[..., 0][kept], image[kept])  # and its colour the photo's
