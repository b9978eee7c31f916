"""Step 01 on the real runtime: ticks, TTL, stop, and what deactivation and restarts do to a timer.

Timing bounds follow daprd 1.14's rules, read from its source and shown by these tests: the first
tick and the TTL end fall on whole seconds (so a tick can come up to TRUNCATION early), the TTL
counts from the first tick, and a timer fires only before its TTL ends.
"""

from __future__ import annotations

import math
import time

import pytest

from daprlab.harness import RunningStack
from daprlab.wait import holds_for, wait_for

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"
TIMER_NAME = "report-message-count"
PERIOD = 1
LONG_TTL = 60
# Generous for a loaded 2-core machine: every wait ends as soon as its condition holds.
SLACK = 10
# daprd puts a timer's first tick and its TTL end on whole seconds.
TRUNCATION = 1
IDLE = 2
# Longer than IDLE by several seconds: the actor goes idle well before its timer's first tick.
LIVE_PERIOD = IDLE + 4
# A timer registered through the sidecar API: the actor does not stop it when it is deactivated.
UNSTOPPED = "unstopped"

Window = tuple[float, float]


def timer(running: RunningStack, actor: str) -> dict:
    resp = running.app.get(f"/chat/{actor}/timer")
    assert resp.status_code == 200, resp.text
    return resp.json()


def send(running: RunningStack, actor: str, content: str = "hi") -> Window:
    """Post a message (which registers the timer); return when it was sent and answered."""
    sent = time.monotonic()
    resp = running.app.post(f"/chat/{actor}", json={"content": content})
    assert resp.status_code == 200, resp.text
    return sent, time.monotonic()


def timer_counting_down(running: RunningStack, actor: str, ttl: int, registered: Window) -> dict:
    """The timer's status, with `seconds_left` checked against when the timer was registered.

    The last tick comes TTL after registering, up to TRUNCATION earlier (when TTL is a multiple
    of the period); the request itself took from `asked` to `answered`.
    """
    asked = time.monotonic()
    status = timer(running, actor)
    answered = time.monotonic()
    low = math.ceil(registered[0] + ttl - TRUNCATION - answered)
    high = math.ceil(registered[1] + ttl - asked)
    assert status["running"] is True, status
    assert max(low, 1) <= status["seconds_left"] <= high, (low, status, high)
    return status


def no_timer(status: dict) -> bool:
    return not status["running"] and status["ticks_this_activation"] == 0


def lines_matching(running: RunningStack, process: str, text: str) -> list[int]:
    """Positions of the lines of `process` that contain `text`."""
    return [i for i, line in enumerate(running.logs(process)) if text in line]


def test_timer_ticks_at_the_configured_period_counts_down_and_stops(lab) -> None:
    running = lab(STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": "60"})
    registered = send(running, "ticker")
    first_status = timer_counting_down(running, "ticker", LONG_TTL, registered)

    wait_for(
        lambda: timer(running, "ticker")["ticks_this_activation"] >= 1, SLACK, "the first tick"
    )
    first = time.monotonic()
    wait_for(
        lambda: timer(running, "ticker")["ticks_this_activation"] >= 4, SLACK, "three more ticks"
    )
    elapsed = time.monotonic() - first
    assert 3 * PERIOD * 0.7 <= elapsed <= 3 * PERIOD + 2, elapsed
    running.wait_for_log("app", r"timer tick 4: ChatAgent ticker has 2 messages", SLACK)
    later_status = timer_counting_down(running, "ticker", LONG_TTL, registered)
    assert later_status["seconds_left"] < first_status["seconds_left"]

    stopped = running.app.delete("/chat/ticker/timer").json()
    assert stopped["running"] is False
    assert stopped["seconds_left"] == 0
    ticks = stopped["ticks_this_activation"]
    holds_for(
        lambda: timer(running, "ticker")["ticks_this_activation"] == ticks,
        4 * PERIOD,
        "no tick after the timer was stopped",
    )


def test_timer_keeps_the_actor_active_until_its_ttl_then_it_can_go_idle(lab) -> None:
    ttl = 6
    running = lab(
        STEP,
        app_env={
            "TIMER_PERIOD_SECONDS": str(PERIOD),
            "TIMER_TTL_SECONDS": str(ttl),
            "ACTOR_IDLE_TIMEOUT_SECONDS": str(IDLE),
        },
    )
    registered = send(running, "busy")
    deactivated = "ChatAgent busy deactivated"

    # Three idle timeouts long, but each tick counts as a use: the actor stays active to the TTL.
    holds_for(
        lambda: (
            not lines_matching(running, "app", deactivated)
            and running.active_actors("ChatAgent") == 1
        ),
        registered[0] + ttl - time.monotonic(),
        "the actor stays active while its timer runs",
    )

    running.wait_for_log("app", deactivated, IDLE + SLACK)
    after_message = time.monotonic() - registered[0]
    # At the earliest: the last tick (TTL after registering, less TRUNCATION), then IDLE.
    assert ttl - TRUNCATION + IDLE <= after_message <= ttl + IDLE + SLACK, after_message
    wait_for(
        lambda: running.active_actors("ChatAgent") == 0, SLACK, "the sidecar to drop the actor"
    )

    # The TTL counts from the first tick: TTL / PERIOD ticks, then daprd drops the timer.
    ticks = ttl // PERIOD
    assert lines_matching(running, "app", f"timer tick {ticks}: ChatAgent busy")
    assert not lines_matching(running, "app", f"timer tick {ticks + 1}: ")
    assert lines_matching(running, "daprd", f"Timer ChatAgent||busy||{TIMER_NAME} has expired")
    assert (
        lines_matching(running, "app", f"timer tick {ticks}: ")[0]
        < lines_matching(running, "app", deactivated)[0]
    )
    assert len(running.app.get("/chat/busy/history").json()["messages"]) == 2


def idle_with_a_live_timer(
    lab, actor: str, also_unstopped: bool = False
) -> tuple[RunningStack, Window]:
    """A stack whose actor went idle after its message, before its timer's first tick.

    With `also_unstopped`, a second timer of the actor, registered through the sidecar API, is
    one the actor does not stop on deactivation: it ticks a second after the actor's own.
    """
    running = lab(
        STEP,
        app_env={
            "TIMER_PERIOD_SECONDS": str(LIVE_PERIOD),
            "TIMER_TTL_SECONDS": str(LONG_TTL),
            "ACTOR_IDLE_TIMEOUT_SECONDS": str(IDLE),
        },
    )
    registered = send(running, actor)
    if also_unstopped:
        resp = running.sidecar.post(
            f"/v1.0/actors/ChatAgent/{actor}/timers/{UNSTOPPED}",
            json={
                "dueTime": f"{LIVE_PERIOD + 1}s",
                "period": f"{LIVE_PERIOD}s",
                "callback": "report_message_count",
                "data": {"ends_at": registered[1] + LONG_TTL},
            },
        )
        assert resp.status_code == 204, resp.text
    running.wait_for_log("app", rf"ChatAgent {actor} deactivated", IDLE + SLACK)
    return running, registered


def test_deactivation_stops_the_timer_so_it_never_ticks(lab) -> None:
    running, registered = idle_with_a_live_timer(lab, "left", also_unstopped=True)
    # The timer was live: its first tick was still to come.
    assert time.monotonic() < registered[0] + LIVE_PERIOD - TRUNCATION

    # The actor stopped its timer as it was deactivated (in milliseconds: no timeout, no hang).
    stopped = lines_matching(running, "app", "timer stopped on deactivation: ChatAgent left")
    assert stopped, "the actor did not stop its timer"
    assert stopped[0] < lines_matching(running, "app", "ChatAgent left deactivated")[0]

    rel = running.release
    if rel.timer_reactivates_idle_actor:
        # 1.15 on (daprlab.releases): the timer the actor did not stop is still in daprd, and at
        # its first tick (a second after the stopped one's) daprd activates the actor again.
        running.wait_for_log("app", r"ChatAgent left activated", LIVE_PERIOD + 1 + SLACK, count=2)
        running.wait_for_log("app", r"timer tick \d+: ChatAgent left has 2 messages", SLACK)
    else:
        assert rel.dropped_timer_line is not None

        def unstopped_dropped() -> bool:
            assert running.active_actors("ChatAgent") == 0, "a timer re-activated the actor"
            dropped = rel.dropped_timer_line.format(
                actor_type="ChatAgent", actor_id="left", name=UNSTOPPED
            )
            return bool(lines_matching(running, "daprd", dropped))

        # The timer the actor did not stop is still in daprd: at its first tick (a second after
        # the stopped one's) daprd 1.14 finds no active actor, drops it and calls nothing.
        wait_for(unstopped_dropped, LIVE_PERIOD + 1 + SLACK, "daprd to drop the unstopped timer")
        # The actor's own timer was gone by its tick: daprd had nothing of it to drop.
        own = rel.dropped_timer_line.format(
            actor_type="ChatAgent", actor_id="left", name=TIMER_NAME
        )
        assert not lines_matching(running, "daprd", own)
        assert not lines_matching(running, "app", "timer tick")
        assert len(lines_matching(running, "app", "ChatAgent left activated")) == 1
    assert len(running.app.get("/chat/left/history").json()["messages"]) == 2


def test_a_call_before_the_tick_gets_a_new_activation_that_no_tick_reaches(lab) -> None:
    running, registered = idle_with_a_live_timer(lab, "revisit")

    # Called again before the timer's first tick: a new activation, which knows of no timer.
    status = timer(running, "revisit")
    assert time.monotonic() < registered[0] + LIVE_PERIOD - TRUNCATION, "called too late"
    assert no_timer(status), status
    assert len(lines_matching(running, "app", "ChatAgent revisit activated")) == 2

    # Asking again and again keeps the new activation active past the time the stopped timer
    # would have ticked: nothing ticks, on 1.14 as on releases that re-activate for a tick.
    holds_for(
        lambda: no_timer(timer(running, "revisit")),
        registered[1] + LIVE_PERIOD + TRUNCATION - time.monotonic(),
        "no tick of the earlier activation's timer",
    )
    assert not lines_matching(running, "app", "timer tick")
    assert running.active_actors("ChatAgent") == 1
    assert len(running.app.get("/chat/revisit/history").json()["messages"]) == 2


def test_every_message_replaces_the_timer_and_extends_its_ttl(lab) -> None:
    ttl = 8
    running = lab(
        STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": str(ttl)}
    )
    first = send(running, "twice", "one")
    wait_for(lambda: timer(running, "twice")["ticks_this_activation"] >= 4, SLACK, "four ticks")
    second = send(running, "twice", "two")
    ticks_at_second = timer_counting_down(running, "twice", ttl, second)["ticks_this_activation"]

    # (time asked, ticks) until daprd reports the timer expired after its last tick.
    samples: list[tuple[float, int]] = []

    def expired() -> bool:
        samples.append((time.monotonic(), timer(running, "twice")["ticks_this_activation"]))
        expiry = f"Timer ChatAgent||twice||{TIMER_NAME} has expired"
        return bool(lines_matching(running, "daprd", expiry))

    wait_for(expired, ttl + SLACK, "the timer to expire")
    final = timer(running, "twice")
    assert (final["running"], final["seconds_left"]) == (False, 0)
    holds_for(
        lambda: timer(running, "twice")["ticks_this_activation"] == final["ticks_this_activation"],
        2 * PERIOD,
        "no tick after the TTL",
    )

    # One timer, not two: after the second message, TTL / PERIOD ticks at most (its first tick
    # may already be counted in ticks_at_second, as it can come up to TRUNCATION early).
    after_second = final["ticks_this_activation"] - ticks_at_second
    assert ttl // PERIOD - 1 <= after_second <= ttl // PERIOD, after_second
    # Ticks came after the first message's timer made its last tick (TTL after it, at the latest).
    later = [ticks for asked, ticks in samples if asked >= first[1] + ttl + TRUNCATION]
    assert later, "the timer expired before the first message's TTL was over"
    assert final["ticks_this_activation"] > later[0], (later[0], final)


def test_restarting_app_and_sidecar_drops_the_timer(lab) -> None:
    running = lab(STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": "60"})
    send(running, "restart")
    wait_for(lambda: timer(running, "restart")["ticks_this_activation"] >= 2, SLACK, "ticks")

    running.restart_app_and_sidecar()

    holds_for(
        lambda: timer(running, "restart")["ticks_this_activation"] == 0,
        3 * PERIOD,
        "no tick after restart",
    )
    assert timer(running, "restart")["running"] is False


def test_restarting_only_the_app_keeps_the_sidecars_timer_firing(lab) -> None:
    running = lab(STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": "60"})
    registered = send(running, "applost")
    wait_for(lambda: timer(running, "applost")["ticks_this_activation"] >= 2, SLACK, "ticks")

    running.restart_app()

    # daprd still holds the timer: it fires into the new app process, counting from zero again.
    running.wait_for_log("app", r"timer tick 1: ChatAgent applost has 2 messages", SLACK, count=2)
    # The tick told the new process when the timer ends: it runs, counting down from the message.
    timer_counting_down(running, "applost", LONG_TTL, registered)
