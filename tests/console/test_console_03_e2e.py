"""The lab console in a real browser beside step 03: the follow-up chain re-entering, then, with
reentrancy off, the deadlock and the 504 it answers (one stack for the module)."""

from __future__ import annotations

import pytest

from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.console_page import (
    console_lab,  # noqa: F401 (a fixture)
    has_event,
    row,
    until,
)

pytestmark = pytest.mark.e2e
STEP = "03_actor_reentrancy"
APP_ENV = {"FOLLOW_UP_TIMEOUT_SECONDS": "2"}


def test_console_shows_the_call_back_then_the_deadlock(console_lab, browser) -> None:  # noqa: F811
    running, _console = console_lab(STEP, APP_ENV)
    page = browser
    assert running.app.post("/chat/erin", json={"content": "hi"}).status_code == 200
    until(
        page,
        lambda: has_event(page, "follow-up call-back", "FollowUpAgent erin"),
        "the follow-up call-back event",
    )
    assert row(page, "ChatAgent erin")["follow-up"] == "re-entered"

    running.stack.instances[0].app_env["REENTRANCY_ENABLED"] = "false"
    running.restart_app_and_sidecar()  # daprd reads the app's config once, at start
    resp = running.app.post("/chat/frank", json={"content": "hi"})
    assert resp.status_code == 504, resp.text
    until(page, lambda: has_event(page, "deadlock", "ChatAgent frank"), "the deadlock event")
    until(page, lambda: has_event(page, "504 answered", "ChatAgent frank"), "the 504 event")
    assert row(page, "ChatAgent frank")["follow-up"] == "deadlocked"
