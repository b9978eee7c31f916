"""A real headless browser for page tests: Debian's `chromium` driven by its `chromium-driver`.

Use the `browser` fixture (add `from tests.support.browser import browser` to a test module;
the name is the fixture). It starts one headless Chromium per module with no network beyond
loopback: every host name but 127.0.0.1 and localhost fails to resolve, so a page that needs a
CDN shows it here as it would on a machine without internet. `.ci/run` installs both packages;
missing, the fixture fails in CI and skips locally, with the command that installs them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_FIX = "install them: `sudo apt-get install chromium chromium-driver` (Debian)"
# Set by CI services (and by .ci/run): a missing browser fails instead of skipping.
CI_ENV = "CI"
PAGE_TIMEOUT_SECONDS = 30
WINDOW_SIZE = "1280,2000"
# Only loopback resolves: the page under test gets no network it could not have offline.
OFFLINE_RESOLVER_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"

T = TypeVar("T")


def chromium_options(profile_dir: str) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        # Chromium's sandbox refuses to run as root, which CI is.
        "--no-sandbox",
        # /dev/shm is small in containers; Chromium then crashes on bigger pages.
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW_SIZE}",
        f"--user-data-dir={profile_dir}",
        f"--host-resolver-rules={OFFLINE_RESOLVER_RULES}",
        "--no-proxy-server",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    # The page's console, for a clear failure message (see `console_errors`).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def _require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not found: {INSTALL_FIX}"
    if os.environ.get(CI_ENV):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module's tests, stopped after them."""
    _require_browser()
    profile = tempfile.mkdtemp(prefix="daprlab-chromium-")
    # An explicit driver path: selenium then never looks one up or downloads one.
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=chromium_options(profile))
    driver.set_page_load_timeout(PAGE_TIMEOUT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The page's console messages at level SEVERE since the last call (failed loads among them)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_in_page(
    driver: webdriver.Chrome,
    condition: Callable[[webdriver.Chrome], T],
    what: str,
    timeout: float = PAGE_TIMEOUT_SECONDS,
) -> T:
    """Poll `condition(driver)` until it returns something truthy; fail naming `what` and the
    page's console errors when it has not within `timeout` seconds."""
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        errors = "\n".join(console_errors(driver)) or "(none)"
        pytest.fail(
            f"{what}: not within {timeout} s on {driver.current_url}; console errors:\n{errors}",
            pytrace=False,
        )
