"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The shared data folder (``$LUMACHROME_SHARED``, else ``../shared/data`` beside the repo), or None."""
    candidates = []
    env = os.environ.get("LUMACHROME_SHARED")
    if env:
        candidates.append(Path(env))
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    candidates.append(Path("/work/shared/data"))
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared data folder; skips the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data folder not found (set LUMACHROME_SHARED or place it at ../shared/data)")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a module's tests, restored afterwards. For files of tiny
    tensors: one thread is faster, and avoids OpenMP spin-waiting when the machine is busy (2 threads
    under load made tests/test_models.py ~10x slower). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _find_browser() -> tuple[str | None, str | None]:
    """``(chromium, chromedriver)`` paths: ``$LUMACHROME_CHROMIUM`` / ``$LUMACHROME_CHROMEDRIVER``, else PATH
    (chromium, chromium-browser, google-chrome) and /usr/bin."""
    import shutil

    def first(env: str, names: tuple[str, ...]) -> str | None:
        if os.environ.get(env):
            return os.environ[env] if Path(os.environ[env]).exists() else None
        for n in names:
            found = shutil.which(n) or (f"/usr/bin/{n}" if Path(f"/usr/bin/{n}").exists() else None)
            if found:
                return found
        return None

    return (first("LUMACHROME_CHROMIUM", ("chromium", "chromium-browser", "google-chrome")),
            first("LUMACHROME_CHROMEDRIVER", ("chromedriver",)))


@pytest.fixture
def browser(tmp_path_factory):
    """A headless Chromium driven by selenium (a fresh one per test, quit afterwards).

    Performance logging is on, so a test can list every request the page made::

        entries = browser.get_log("performance")  # Network.requestWillBeSent messages hold the URLs

    Skips with the reason when selenium, chromium or chromedriver is missing or the browser does not start
    (``make setup`` installs chromium + chromium-driver with apt-get when it runs as root).
    """
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    chromium, driver_path = _find_browser()
    if chromium is None or driver_path is None:
        pytest.skip("no headless browser: chromium and chromedriver not found (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as e:
        pytest.skip(f"headless chromium did not start: {str(e).splitlines()[0][:200]}")
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
