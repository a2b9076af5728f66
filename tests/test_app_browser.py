"""The web app in a real headless Chromium: upload, click a hint, colorize, check the colour there.

Uses the ``browser`` fixture of conftest.py (selenium + chromium + chromedriver; skips with the reason
when they are missing). Set ``LUMACHROME_SCREENSHOT=path.png`` to keep a screenshot of the page.
"""

from __future__ import annotations

import io
import json
import math
import os
import re

import numpy as np
import pytest
from _http import Server, get, post_form, script_png

from lumachrome.color.lab import rgb_to_lab_np
from lumachrome.colorizer import available_models
from lumachrome.imageio import save_image

pytestmark = pytest.mark.skipif("photo-hints" not in available_models(), reason="needs the shipped photo-hints model")

HINT = "#d02020"


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.stop()


def _test_image(path):
    """A gray photo (scikit-image's bundled cat), 451x300."""
    from skimage import data

    rgb = data.chelsea().astype(np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    save_image(path, np.dstack([gray] * 3))
    return gray.shape


def _hue(a: float, b: float) -> float:
    return math.degrees(math.atan2(b, a))


def test_upload_click_a_hint_and_colorize(browser, server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    src = tmp_path / "cat.png"
    H, W = _test_image(src)
    browser.get(server.url + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 0)
    assert browser.find_element(By.ID, "model").get_attribute("value") == "photo-hints"

    browser.find_element(By.ID, "file").send_keys(str(src))  # same path as a drop: the upload call
    wait.until(EC.element_to_be_clickable((By.ID, "run")))
    img = browser.find_element(By.ID, "input-img")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img))
    browser.execute_script(
        "const c = document.getElementById('color'); c.value = arguments[0];"
        "c.dispatchEvent(new Event('input')); c.dispatchEvent(new Event('change'));", HINT)

    # click at 30% / 25% of the displayed image (background above the cat)
    rect = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", img)
    dx, dy = round(0.30 * rect[0]), round(0.25 * rect[1])
    ActionChains(browser).move_to_element_with_offset(img, dx - rect[0] // 2, dy - rect[1] // 2).click().perform()
    item = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hints li"))
    m = re.search(r"(#[0-9a-f]{6}) at (\d+), (\d+)", item[0].text)
    assert m and m.group(1) == HINT, item[0].text
    x, y = int(m.group(2)), int(m.group(3))
    assert abs(x - 0.30 * W) <= 3 and abs(y - 0.25 * H) <= 3  # full-resolution pixel under the click
    assert len(browser.find_elements(By.CSS_SELECTOR, "#markers .marker")) == 1

    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: d.find_element(By.ID, "download").get_attribute("data-ready") == "1")
    status = browser.find_element(By.ID, "status").text
    assert "Done" in status and "1 hint" in status, status
    wait.until(lambda d: d.execute_script("return document.getElementById('after').naturalWidth") > 0)
    # the before/after slider: 15% "before" on the left, the rest is the result
    browser.execute_script("const s = document.getElementById('slider'); s.value = 15;"
                           "s.dispatchEvent(new Event('input'));")
    assert "85%" in browser.find_element(By.ID, "before").get_attribute("style")
    if os.environ.get("LUMACHROME_SCREENSHOT"):
        browser.save_screenshot(os.environ["LUMACHROME_SCREENSHOT"])

    # the full-resolution download has the hint's hue where it was placed
    status_code, png = get(browser.find_element(By.ID, "download").get_attribute("href"))
    from PIL import Image

    out = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32) / 255.0
    assert status_code == 200 and out.shape[:2] == (H, W)
    lab = rgb_to_lab_np(out)
    hint_lab = rgb_to_lab_np(np.array([[[0xD0, 0x20, 0x20]]], np.float32) / 255.0)[0, 0]
    a, b = lab[y - 2:y + 3, x - 2:x + 3, 1].mean(), lab[y - 2:y + 3, x - 2:x + 3, 2].mean()
    assert math.hypot(a, b) > 20, (a, b)  # clearly coloured
    assert abs(_hue(a, b) - _hue(hint_lab[1], hint_lab[2])) < 25, (a, b, hint_lab)

    # every request of the page went to this server (no CDN, fonts or analytics)
    urls = []
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    # (chrome:// URLs are the browser's own start page, before our page loads)
    web = [u for u in urls if not u.startswith(("chrome:", "chrome-untrusted:", "data:", "blob:", "about:"))]
    assert web and all(u.startswith(server.url + "/") for u in web), web
    # the strict Content-Security-Policy blocked nothing the page needs
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not blocked, blocked


def test_an_uploaded_html_file_never_runs_in_the_browser(browser, server, tmp_path):
    """Stored XSS: a valid image named x.html, with a script in a text chunk, was served back as
    /files/<id>/input.html (text/html, the app's origin) and its script ran."""
    import base64

    src = tmp_path / "g.png"
    _test_image(src)
    payload = script_png(src.read_bytes())
    # the control: rendered as HTML, this file's script does run (so the check below can fail)
    browser.get("data:text/html;base64," + base64.b64encode(payload).decode())
    assert browser.title == "pwned"

    for filename in ("x.html", "x.svg"):
        status, up = post_form(server.url + "/api/upload", files={"file": (filename, payload)})
        assert status == 200, up
        ext = filename.rsplit(".", 1)[1]
        for name in (f"input.{ext}", "input.jpg"):
            browser.get(f"{server.url}/files/{up['id']}/{name}")
            assert browser.execute_script("return document.title") != "pwned", name


def test_explain_view_renders_under_the_strict_policy(browser, server):
    """The explain view (inline style sheet, PNG figures) is served sandboxed without scripts: it must
    still show every figure, on its own and framed by the page."""
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    buf = io.BytesIO()
    Image.fromarray((np.linspace(0, 255, 96 * 128).reshape(96, 128)).astype(np.uint8)).save(buf, format="PNG")
    status, res = post_form(server.url + "/api/colorize", {"model": "photo", "explain": "1"}, {"file": ("g.png", buf.getvalue())})
    assert status == 200, res
    if not res["explain"]["available"]:
        pytest.skip(res["explain"]["message"])
    index = server.url + res["explain"]["index"]
    browser.get(index)
    sizes = browser.execute_script("return [...document.images].map(i => i.complete && i.naturalWidth)")
    assert sizes and all(sizes), sizes
    assert browser.execute_script("return document.styleSheets.length") >= 1
    browser.get(server.url + "/")
    browser.execute_script("const f = document.createElement('iframe'); f.id = 'ex'; f.src = arguments[0];"
                           "document.body.appendChild(f);", index)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "const d = document.getElementById('ex').contentDocument;"
        "return d && d.readyState === 'complete' && d.images.length > 0 && [...d.images].every(i => i.complete)"))
    framed = browser.execute_script("return [...document.getElementById('ex').contentDocument.images].map(i => i.naturalWidth)")
    assert framed == sizes
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not blocked, blocked
