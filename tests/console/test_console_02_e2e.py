"""The lab console in a real browser beside step 02: the expiry reminder armed, counting down,
firing, and the history it clears, as Redis holds it (one stack for the module)."""

from __future__ import annotations

import pytest

from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.console_page import (
    console_lab,  # noqa: F401 (a fixture)
    has_event,
    open_actor,
    row,
    shown_state,
    until,
)

pytestmark = pytest.mark.e2e
STEP = "02_actor_reminders"
HISTORY_TTL = 4
APP_ENV = {"HISTORY_TTL_SECONDS": str(HISTORY_TTL)}
CAROL = "ChatAgent carol"
HISTORY_KEY = "chat-agent||ChatAgent||carol||history"


def due_in(page) -> str:
    return row(page, CAROL)["due-in"]


def test_console_counts_the_reminder_down_and_shows_the_history_cleared(
    console_lab,  # noqa: F811
    browser,  # noqa: F811
) -> None:
    running, _console = console_lab(STEP, APP_ENV)
    page = browser
    assert running.app.post("/chat/carol", json={"content": "hello"}).status_code == 200

    until(page, lambda: row(page, CAROL) and row(page, CAROL)["reminder"] == "armed", "armed")
    assert has_event(page, "reminder armed", CAROL)
    first = int(due_in(page).removesuffix(" s"))
    assert 0 < first <= HISTORY_TTL, first
    open_actor(page, CAROL)
    stored = until(page, lambda: (s := shown_state(page)) and s["keys"][HISTORY_KEY] and s, "state")
    assert [m["content"] for m in stored["keys"][HISTORY_KEY]] == ["hello", "You said: hello"]
    (record,) = stored["reminders"]
    assert record["name"] == "clear-history" and record["actorID"] == "carol", record
    assert (
        record["data_decoded"] == stored["keys"]["chat-agent||ChatAgent||carol||history_expires_at"]
    )

    until(page, lambda: due_in(page).startswith("0 s"), "the countdown at zero")
    until(page, lambda: has_event(page, "reminder fired", CAROL), "the reminder fired event")
    until(page, lambda: row(page, CAROL)["messages"] == "0", "no messages left")
    until(
        page,
        lambda: (s := shown_state(page)) and s["keys"][HISTORY_KEY] is None and not s["reminders"],
        "the history shown empty, the reminder gone",
    )
