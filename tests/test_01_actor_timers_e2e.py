"""Step 01 on the real runtime: ticks, stop, and what deactivation and restarts do to a timer."""

from __future__ import annotations

import time

import pytest

from daprlab.wait import holds_for, wait_for

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"
PERIOD = 1
SLACK = 10


def timer(running, actor: str) -> dict:
    resp = running.app.get(f"/chat/{actor}/timer")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_timer_ticks_at_the_configured_period_and_stops(lab) -> None:
    running = lab(STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": "60"})
    assert running.app.post("/chat/ticker", json={"content": "hi"}).status_code == 200

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

    stopped = running.app.delete("/chat/ticker/timer").json()
    assert stopped["running"] is False
    ticks = stopped["ticks_this_activation"]
    holds_for(
        lambda: timer(running, "ticker")["ticks_this_activation"] == ticks,
        4 * PERIOD,
        "no tick after the timer was stopped",
    )


def test_timer_keeps_the_actor_active_until_its_ttl_then_it_can_go_idle(lab) -> None:
    ttl, idle = 6, 2
    running = lab(
        STEP,
        app_env={
            "TIMER_PERIOD_SECONDS": str(PERIOD),
            "TIMER_TTL_SECONDS": str(ttl),
            "ACTOR_IDLE_TIMEOUT_SECONDS": str(idle),
        },
    )
    assert running.app.post("/chat/busy", json={"content": "hi"}).status_code == 200
    deactivated = r"ChatAgent busy deactivated"

    # Longer than the idle timeout, but the timer keeps firing: the actor stays active.
    holds_for(
        lambda: not any("busy deactivated" in line for line in running.logs("app")),
        ttl - 2,
        "the actor stays active while its timer runs",
    )
    assert running.active_actors("ChatAgent") == 1

    running.wait_for_log("app", deactivated, ttl + idle + SLACK)
    wait_for(
        lambda: running.active_actors("ChatAgent") == 0, SLACK, "the sidecar to drop the actor"
    )

    # A new activation: no timer, tick count from zero, history intact.
    status = timer(running, "busy")
    assert status == {**status, "running": False, "ticks_this_activation": 0}
    holds_for(
        lambda: timer(running, "busy")["ticks_this_activation"] == 0,
        3 * PERIOD,
        "no timer after deactivation",
    )
    assert len(running.app.get("/chat/busy/history").json()["messages"]) == 2


def test_restarting_app_and_sidecar_drops_the_timer(lab) -> None:
    running = lab(STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": "60"})
    assert running.app.post("/chat/restart", json={"content": "hi"}).status_code == 200
    wait_for(lambda: timer(running, "restart")["ticks_this_activation"] >= 2, SLACK, "ticks")

    running.restart_app_and_sidecar()

    assert timer(running, "restart") == {
        **timer(running, "restart"),
        "running": False,
        "ticks_this_activation": 0,
    }
    holds_for(
        lambda: timer(running, "restart")["ticks_this_activation"] == 0,
        3 * PERIOD,
        "no tick after restart",
    )


def test_restarting_only_the_app_keeps_the_sidecars_timer_firing(lab) -> None:
    running = lab(STEP, app_env={"TIMER_PERIOD_SECONDS": str(PERIOD), "TIMER_TTL_SECONDS": "60"})
    assert running.app.post("/chat/applost", json={"content": "hi"}).status_code == 200
    wait_for(lambda: timer(running, "applost")["ticks_this_activation"] >= 2, SLACK, "ticks")

    running.restart_app()

    # daprd still holds the timer: it fires into the new app process, counting from zero again.
    running.wait_for_log("app", r"timer tick 1: ChatAgent applost has 2 messages", SLACK, count=2)
