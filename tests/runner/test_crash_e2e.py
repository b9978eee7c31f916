"""A power cut on the real stack: every answered message is kept, exactly once.

A burst of messages over 30 actors, SIGKILL of every process of the stack at once (Stack.crash,
what `daprlab fault kill all` does), then a new stack on the same state dir: each message that was
answered 200 before the crash is in its actor's history exactly once, at two crash points (during
the burst; just after the last answer). And a step 02 reminder armed before the crash still
fires after it. Redis runs with the lab's default, fsync-always.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daprlab.bench.crash import (
    AFTER_LAST,
    CRASH_POINTS,
    DURING,
    DURING_AFTER_ANSWERS,
    burst_then_crash,
    kept_messages,
    tally,
)
from daprlab.harness import report_measured
from daprlab.stack.process import process_gone
from daprlab.wait import wait_for

pytestmark = pytest.mark.e2e
STEP_01 = "01_actor_timers"
STEP_02 = "02_actor_reminders"
HISTORY_TTL_SECONDS = 20
REMINDER_SLACK_SECONDS = 30
GONE_SECONDS = 10


@pytest.fixture(scope="module")
def step_01(module_lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Any]]:
    """The module's running step 01 stack: the stack one test started again after its crash is
    the next test's stack to crash (one start fewer per crash point). All on one state dir."""
    state_dir = tmp_path_factory.mktemp("crash-01")
    live: list[Any] = []

    def running(restart: bool = False) -> Any:
        if restart or not live:
            live[:] = [module_lab(STEP_01, state_dir=state_dir)]
        return live[0]

    yield running
    for stack in live:
        stack.stop()


def crash(running) -> None:
    """Stack.crash, and a check that it left no process of the stack alive."""
    pids = [proc.pid for proc in running.stack.processes()]
    killed = running.stack.crash()
    assert {"redis", "placement", "scheduler", "daprd", "app"} <= set(killed), killed
    for pid in pids:
        wait_for(lambda pid=pid: process_gone(pid), GONE_SECONDS, f"pid {pid} to be gone")


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_every_answered_message_survives_a_crash_exactly_once(
    step_01: Callable[..., Any], request: pytest.FixtureRequest, point: str
) -> None:
    before = step_01()
    prefix = "during" if point == DURING else "after"
    burst = burst_then_crash(before.stack.app_url, lambda: crash(before), point, prefix)
    answered = burst.answered_count()
    if point == DURING:  # the crash cut the burst: some answered, some not
        assert DURING_AFTER_ANSWERS <= answered, burst
        assert burst.unanswered, "the crash came after the burst had ended"
    else:
        assert point == AFTER_LAST and not burst.unanswered, burst
    after = step_01(restart=True)  # on the same state dir
    kept = kept_messages(after.stack.app_url, burst.actors)
    result = tally(burst, kept)
    report_measured(request.config, f"crash {point}, redis fsync-always: {result.line()}")
    assert result.kept == result.answered == answered, result
    assert result.duplicated == 0, kept


def test_a_reminder_armed_before_the_crash_fires_after_it(
    module_lab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state_dir = tmp_path_factory.mktemp("crash-02")
    env = {"HISTORY_TTL_SECONDS": str(HISTORY_TTL_SECONDS)}
    before = module_lab(STEP_02, app_env=env, state_dir=state_dir)
    resp = before.app.post("/chat/crash-reminder", json={"content": "remember me"})
    assert resp.status_code == 200, resp.text
    expiry = before.app.get("/chat/crash-reminder/expiry").json()
    assert expiry["armed"] and expiry["expires_at"], expiry
    crash(before)
    after = module_lab(STEP_02, app_env=env, state_dir=state_dir)
    # Nothing touches the actor after the restart: only the stored reminder can wake it.
    fired = after.wait_for_log(
        "app",
        r"history expired: ChatAgent crash-reminder \(reminder clear-history\)",
        HISTORY_TTL_SECONDS + REMINDER_SLACK_SECONDS,
    )
    assert fired
    assert after.app.get("/chat/crash-reminder/history").json()["messages"] == []
