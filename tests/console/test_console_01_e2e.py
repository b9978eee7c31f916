"""The lab console in a real browser beside step 01: a timer's ticks, idle deactivation, and the
sidecar and Redis failing and coming back (one stack for the module)."""

from __future__ import annotations

import signal

import pytest

from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.console_page import (
    console_lab,  # noqa: F401 (a fixture)
    has_event,
    problems,
    processes,
    row,
    type_card,
    until,
)

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"
# Ticks every second for 3 seconds; then 2 idle seconds and the actor is deactivated.
APP_ENV = {"TIMER_PERIOD_SECONDS": "1", "TIMER_TTL_SECONDS": "3", "ACTOR_IDLE_TIMEOUT_SECONDS": "2"}


def test_console_shows_ticks_deactivation_and_outages(console_lab, browser) -> None:  # noqa: F811
    running, _console = console_lab(STEP, APP_ENV)
    page = browser
    assert running.app.post("/chat/alice", json={"content": "hi"}).status_code == 200

    until(
        page,
        lambda: (
            (r := row(page, "ChatAgent alice"))
            and r["timer"] == "running"
            and int(r["seconds-left"]) > 0
        ),
        "alice's timer running, counting down",
    )
    alice = until(
        page,
        lambda: (
            (r := row(page, "ChatAgent alice"))
            and r["state"] == "active"
            and int(r["ticks"]) >= 2
            and r
        ),
        "alice active with 2 ticks",
    )
    assert alice["messages"] == "2", alice
    until(page, lambda: has_event(page, "timer tick", "ChatAgent alice"), "a timer tick event")
    # The sidecar counts alice while she is active (3 s of ticks, 2 idle), then the count drops.
    until(page, lambda: type_card(page, "ChatAgent")["count"] == "1", "the active count at 1")
    until(
        page,
        lambda: row(page, "ChatAgent alice")["state"] == "deactivated",
        "alice deactivated after the TTL and the idle timeout",
    )
    until(page, lambda: type_card(page, "ChatAgent")["count"] == "0", "the active count dropped")
    assert row(page, "ChatAgent alice")["seconds-left"] == "0"

    # The sidecar stops answering (paused): the page says so and keeps bob's count, greyed.
    assert running.app.post("/chat/bob", json={"content": "hi"}).status_code == 200
    until(page, lambda: type_card(page, "ChatAgent")["count"] == "1", "bob counted")
    daprd = running.stack.instances[0].daprd
    assert daprd is not None
    daprd.signal(signal.SIGSTOP)
    try:
        until(page, lambda: "sidecar" in problems(page), "the sidecar outage")
        card = type_card(page, "ChatAgent")
        assert card == {"count": "1", "stale": True}, card
    finally:
        daprd.signal(signal.SIGCONT)
    until(page, lambda: "sidecar" not in problems(page), "the sidecar's recovery")

    # Redis stops and starts again: the outage, then the recovery, with no reload of the page.
    running.stack.control.pop("redis").stop()
    until(page, lambda: "redis" in problems(page), "the Redis outage")
    assert "Redis is down" in problems(page)["redis"]
    until(page, lambda: processes(page).get("redis") == "down", "redis shown down")
    running.stack.start_redis()
    until(page, lambda: "redis" not in problems(page), "Redis back")
    until(page, lambda: processes(page).get("redis") == "up", "redis shown up")
    until(page, lambda: has_event(page, "source up again", ""), "the recovery event")
