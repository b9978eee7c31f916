"""The shared browser fixture runs scripts from loopback and reaches nothing beyond it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.support.browser import browser, wait_in_page

__all__ = ["browser"]

PAGE = b"""<!doctype html>
<html><body>
<p id="local">not run</p><p id="remote">not run</p>
<script src="/local.js"></script>
<script>
  // no-cors: any answer from the host counts as reached; only a network error rejects.
  fetch("https://example.com/", {mode: "no-cors"}).then(
    () => { document.getElementById("remote").textContent = "reached"; },
    () => { document.getElementById("remote").textContent = "failed"; });
</script>
</body></html>"""
LOCAL_SCRIPT = b"document.getElementById('local').textContent = 'ran';"


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, kind = (
            (LOCAL_SCRIPT, "text/javascript")
            if self.path == "/local.js"
            else (
                PAGE,
                "text/html",
            )
        )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_scripts_run_and_the_internet_is_out_of_reach(
    browser: webdriver.Chrome, page_url: str
) -> None:
    browser.get(page_url)

    def text(element_id: str) -> str:
        return browser.find_element("id", element_id).text

    wait_in_page(browser, lambda _: text("local") == "ran", "the loopback script ran")
    wait_in_page(browser, lambda _: text("remote") == "failed", "a fetch beyond loopback failed")
