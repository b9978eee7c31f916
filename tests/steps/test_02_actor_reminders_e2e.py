"""Step 02 on the real runtime: a one-shot reminder clears the history after inactivity.

Each test reads the reminder three ways: through the app (`/chat/{id}/expiry`), through the
sidecar (`GET /v1.0/actors/ChatAgent/{id}/reminders/clear-history`) and where the runtime keeps
it (daprlab.releases): on 1.14 in Redis (the hash `actors||ChatAgent`), from 1.15 on in the
Scheduler, with nothing in Redis.
"""

from __future__ import annotations

import base64
import json
import math
import time
from calendar import timegm
from collections.abc import Callable

import pytest

from daprlab import releases
from daprlab.wait import holds_for, wait_for

pytestmark = pytest.mark.e2e
STEP = "02_actor_reminders"
REMINDER = "clear-history"
REMINDERS_KEY = "actors||ChatAgent"
SLACK = 15
# How late after `expires_at` a fire may clear the history (measured: about a tenth of a second).
FIRE_LATENESS = 2
# A reminder that must outlast a restart is armed for a TTL taken from a restart timed just before:
# the next one may be this much slower (load changes), and the checks after it need some seconds.
RESTART_SLOWDOWN = 2
CHECKS_SECONDS = 5


# ---- helpers ----------------------------------------------------------------------------------
def post(running, actor: str, content: str = "hi") -> None:
    resp = running.app.post(f"/chat/{actor}", json={"content": content})
    assert resp.status_code == 200, resp.text


def expiry(running, actor: str) -> dict:
    resp = running.app.get(f"/chat/{actor}/expiry")
    assert resp.status_code == 200, resp.text
    return resp.json()


def epoch(iso: str) -> float:
    """Seconds since the epoch of the API's "2026-01-01T10:00:00Z" (UTC, whole seconds)."""
    return float(timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))


def messages(running, actor: str) -> int:
    resp = running.app.get(f"/chat/{actor}/history")
    assert resp.status_code == 200, resp.text
    return len(resp.json()["messages"])


def sidecar_reminder(running, actor: str, name: str = REMINDER) -> dict | None:
    """The reminder as daprd reports it; None when the release's answer says there is none."""
    resp = running.sidecar.get(f"/v1.0/actors/ChatAgent/{actor}/reminders/{name}")
    rel = running.release
    if releases.reminder_gone(rel, resp.status_code, resp.json()):
        return None
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert rel.reminder_get_extra_keys <= body.keys(), body
    if rel.reminder_get_extra_keys:
        assert (body["actorType"], body["actorID"]) == ("ChatAgent", actor), body
    return body


def kept_reminders(running, actor: str) -> list[dict]:
    """This actor's reminders where the release keeps them: on 1.14 the entries of the list daprd
    keeps in the actor state store; from 1.15 on the Scheduler's, seen through daprd's GET, while
    Redis holds none."""
    if running.release.reminders_in_state_store:
        out = running.redis("HGET", REMINDERS_KEY, "data")
        return [r for r in (json.loads(out) if out else []) if r["actorID"] == actor]
    assert running.redis("KEYS", "actors||*") == "", "the Scheduler keeps reminders, not Redis"
    found = sidecar_reminder(running, actor)
    return [] if found is None else [found]


def check_kept_due(running, kept: dict, due: float) -> None:
    """The kept reminder is due when the app says: the state store's entry has its registration
    time (1.14); the Scheduler's is read through the GET, whose dueTime the callers check."""
    if running.release.reminders_in_state_store:
        assert abs(epoch(kept["registeredTime"]) - due) <= 1, (kept, due)
    else:
        assert kept["dueTime"], kept


def expired_lines(running, actor: str) -> list[str]:
    line = f"history expired: ChatAgent {actor} (reminder {REMINDER})"
    return [entry for entry in running.logs("app") if line in entry]


def wait_expired(running, actor: str, timeout: float) -> float:
    """Wait for the "history expired" line; return the wall-clock time it was seen."""
    running.wait_for_log(
        "app", rf"history expired: ChatAgent {actor} \(reminder {REMINDER}\)", timeout
    )
    return time.time()


def ttl_outlasting(running, restart: Callable[[], None]) -> int:
    """Time `restart` on this machine now; restart the app with a HISTORY_TTL_SECONDS that
    outlasts the next such restart and the checks after it. Returns the TTL."""
    started = time.monotonic()
    restart()
    took = time.monotonic() - started
    ttl = math.ceil(RESTART_SLOWDOWN * took) + CHECKS_SECONDS
    print(f"restart took {took:.1f}s: TTL {ttl}s")
    running.restart_app(app_env={"HISTORY_TTL_SECONDS": str(ttl)})
    return ttl


def until(wall_time: float) -> float:
    """Seconds from now to a wall-clock time (at least a tenth, for holds_for)."""
    return max(0.1, wall_time - time.time())


# ---- tests ------------------------------------------------------------------------------------
def test_history_is_cleared_after_the_configured_inactivity(lab) -> None:
    ttl = 4
    running = lab(STEP, app_env={"HISTORY_TTL_SECONDS": str(ttl)})
    sent = time.time()
    post(running, "quiet")
    answered = time.time()

    status = expiry(running, "quiet")
    assert status["armed"] is True and status["history_ttl_seconds"] == ttl
    due = epoch(status["expires_at"])
    assert sent + ttl - 1 <= due <= answered + ttl, (status, sent, answered)

    # What the SDK sent for register_reminder(..., due_time=4 s, period=None): no period at all,
    # which is one-shot on every release (a zero period repeats from 1.15 on).
    reminder = sidecar_reminder(running, "quiet")
    assert reminder is not None
    assert reminder["dueTime"] == f"0h0m{ttl}s0ms0μs"
    assert "period" not in reminder, reminder
    assert base64.b64decode(reminder["data"]).decode() == status["expires_at"]
    # ... and where daprd keeps it: one entry (on 1.14 in Redis, due at the whole second the API
    # shows; from 1.15 on in the Scheduler).
    (stored,) = kept_reminders(running, "quiet")
    assert "period" not in stored, stored
    check_kept_due(running, stored, due)
    if running.release.reminders_in_state_store:
        assert stored["name"] == REMINDER
        assert running.redis("EXISTS", f"{REMINDERS_KEY}||metadata") == "1"
    # The actor's own state has the app id in front; the reminder list does not.
    expiry_key = "chat-agent||ChatAgent||quiet||history_expires_at"
    assert running.redis("HGET", expiry_key, "data") == json.dumps(status["expires_at"])

    holds_for(lambda: messages(running, "quiet") == 2, until(due - 0.5), "history kept until due")
    fired = wait_expired(running, "quiet", ttl + SLACK)
    assert due - 0.5 <= fired <= due + FIRE_LATENESS, f"cleared {fired - due:+.2f}s from due"

    assert messages(running, "quiet") == 0
    assert expiry(running, "quiet") == {
        "armed": False,
        "expires_at": None,
        "history_ttl_seconds": ttl,
    }
    # One-shot: after firing, daprd deleted it from its list.
    assert sidecar_reminder(running, "quiet") is None
    assert kept_reminders(running, "quiet") == []
    assert len(expired_lines(running, "quiet")) == 1

    # The next message starts a new conversation and arms a new expiry.
    post(running, "quiet", "back again")
    assert messages(running, "quiet") == 2
    assert expiry(running, "quiet")["armed"] is True


def test_a_new_message_postpones_the_expiry(lab) -> None:
    ttl = 6
    running = lab(STEP, app_env={"HISTORY_TTL_SECONDS": str(ttl)})
    post(running, "chatty", "first")
    first_due = epoch(expiry(running, "chatty")["expires_at"])

    # Half way through the period, another message re-arms the reminder.
    holds_for(lambda: messages(running, "chatty") == 2, until(first_due - ttl / 2), "history kept")
    post(running, "chatty", "second")
    second = expiry(running, "chatty")
    second_due = epoch(second["expires_at"])
    assert second_due - first_due >= 2, (first_due, second_due)
    (stored,) = kept_reminders(running, "chatty")
    check_kept_due(running, stored, second_due)
    reminder = sidecar_reminder(running, "chatty")
    assert reminder is not None
    assert base64.b64decode(reminder["data"]).decode() == second["expires_at"]

    # Past the first due time the history is still there: the first reminder was replaced.
    holds_for(
        lambda: messages(running, "chatty") == 4,
        until(first_due + 1.5),
        "history kept past the original due time",
    )
    assert expired_lines(running, "chatty") == []

    fired = wait_expired(running, "chatty", until(second_due) + SLACK)
    assert second_due - 0.5 <= fired <= second_due + FIRE_LATENESS, (fired, second_due)
    assert messages(running, "chatty") == 0
    assert len(expired_lines(running, "chatty")) == 1


def test_cancel_keeps_the_history_past_the_due_time(lab) -> None:
    ttl = 3
    running = lab(STEP, app_env={"HISTORY_TTL_SECONDS": str(ttl)})
    post(running, "keeper")
    due = epoch(expiry(running, "keeper")["expires_at"])

    resp = running.app.delete("/chat/keeper/expiry")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"armed": False, "expires_at": None, "history_ttl_seconds": ttl}
    running.wait_for_log("app", r"expiry cancelled: ChatAgent keeper keeps its history", SLACK)
    assert sidecar_reminder(running, "keeper") is None
    assert kept_reminders(running, "keeper") == []

    holds_for(
        lambda: messages(running, "keeper") == 2,
        until(due + 3),
        "history kept past the due time after a cancel",
    )
    assert expired_lines(running, "keeper") == []
    # Cancelling again (nothing armed) is harmless.
    assert running.app.delete("/chat/keeper/expiry").json()["armed"] is False


def test_reminder_fires_after_the_actor_was_deactivated(lab) -> None:
    ttl, idle = 6, 1
    running = lab(
        STEP, app_env={"HISTORY_TTL_SECONDS": str(ttl), "ACTOR_IDLE_TIMEOUT_SECONDS": str(idle)}
    )
    post(running, "sleepy")
    due = epoch(expiry(running, "sleepy")["expires_at"])

    running.wait_for_log("app", r"ChatAgent sleepy deactivated", until(due))
    wait_for(lambda: running.active_actors("ChatAgent") == 0, until(due), "no active actor")
    assert expired_lines(running, "sleepy") == []

    # The reminder activates a new instance to deliver itself.
    wait_expired(running, "sleepy", until(due) + SLACK)
    activations = running.wait_for_log("app", r"ChatAgent sleepy activated", 1, count=2)
    assert len(activations) == 2
    assert messages(running, "sleepy") == 0


def test_reminder_fires_after_app_and_sidecar_were_restarted(lab) -> None:
    running = lab(STEP)
    ttl = ttl_outlasting(running, running.restart_app_and_sidecar)
    post(running, "durable")
    assert expiry(running, "durable")["history_ttl_seconds"] == ttl
    armed = expiry(running, "durable")
    due = epoch(armed["expires_at"])

    started = time.monotonic()
    running.restart_app_and_sidecar()
    restart_seconds = time.monotonic() - started
    assert time.time() < due - 1, f"restart took {restart_seconds:.1f}s: too slow to prove it"
    print(f"app and daprd restarted in {restart_seconds:.1f}s")

    # Nothing of it lived only in memory: state, expiry and reminder are all still there.
    assert messages(running, "durable") == 2
    assert expiry(running, "durable") == armed
    reminder = sidecar_reminder(running, "durable")
    assert reminder is not None
    assert base64.b64decode(reminder["data"]).decode() == armed["expires_at"]
    assert len(kept_reminders(running, "durable")) == 1

    holds_for(lambda: messages(running, "durable") == 2, until(due - 0.5), "history kept")
    fired = wait_expired(running, "durable", until(due) + SLACK)
    assert fired >= due - 0.5, (fired, due)
    assert messages(running, "durable") == 0
    assert len(expired_lines(running, "durable")) == 1


def test_reminder_fires_after_the_whole_stack_was_restarted(lab) -> None:
    """Redis, placement, scheduler, daprd and the app: what Ctrl-C and `daprlab up` again do."""
    running = lab(STEP)

    def whole_stack() -> None:
        running.stack.stop()  # Redis writes its data to disk on the way down
        running.stack.start()

    ttl = ttl_outlasting(running, whole_stack)
    post(running, "phoenix")
    assert expiry(running, "phoenix")["history_ttl_seconds"] == ttl
    armed = expiry(running, "phoenix")
    due = epoch(armed["expires_at"])

    whole_stack()
    assert time.time() < due - 1, "the restart took too long to prove anything"

    assert messages(running, "phoenix") == 2
    assert expiry(running, "phoenix") == armed
    wait_expired(running, "phoenix", until(due) + SLACK)
    assert messages(running, "phoenix") == 0


def test_rearming_many_times_keeps_exactly_one_reminder(lab) -> None:
    ttl, count = 4, 30
    running = lab(STEP, app_env={"HISTORY_TTL_SECONDS": str(ttl)})
    started = time.monotonic()
    for number in range(count):
        post(running, "rapid", f"message {number}")
    elapsed = time.monotonic() - started
    last = expiry(running, "rapid")
    due = epoch(last["expires_at"])

    (stored,) = kept_reminders(running, "rapid")
    check_kept_due(running, stored, due)
    reminder = sidecar_reminder(running, "rapid")
    assert reminder is not None
    assert base64.b64decode(reminder["data"]).decode() == last["expires_at"]
    print(f"{count} re-arms in {elapsed:.1f}s")

    wait_expired(running, "rapid", until(due) + SLACK)
    assert messages(running, "rapid") == 0
    # Nothing else fires: no duplicate, and no replaced reminder coming back as a stale fire.
    holds_for(
        lambda: len(expired_lines(running, "rapid")) == 1,
        3,
        "exactly one expiry for 30 re-arms",
    )
    assert not any("stale reminder" in line for line in running.logs("app"))
    assert kept_reminders(running, "rapid") == []


def test_an_identical_reregistration_and_a_stale_fire_is_ignored(lab) -> None:
    """Why the reminder's data carries the expiry time: 1.14 ignores an identical re-register,
    and from 1.15 on it re-schedules the reminder from now (daprlab.releases); on both, a fire
    whose data is not the armed expiry leaves the history alone."""
    running = lab(STEP, app_env={"HISTORY_TTL_SECONDS": "60"})
    post(running, "racer")
    url = f"/v1.0/actors/ChatAgent/racer/reminders/{REMINDER}"
    due_seconds = 5
    # One-shot like the app's own: no period.
    same = {
        "dueTime": f"0h0m{due_seconds}s0ms0μs",
        "data": base64.b64encode(b"not the armed expiry").decode(),
    }

    first_put = time.time()
    assert running.sidecar.put(url, json=same).status_code == 204
    (first,) = kept_reminders(running, "racer")
    # Re-registered 3 s later, a replacement would be due 3 s after the first one.
    wait_for(lambda: time.time() >= first_put + 3, SLACK, "a later registration time")
    second_put = time.time()
    assert running.sidecar.put(url, json=same).status_code == 204
    (second,) = kept_reminders(running, "racer")
    if running.release.reminders_in_state_store:
        # The registration time in Redis shows it: the identical request changed nothing.
        assert second["registeredTime"] == first["registeredTime"]

    # The reminder fires, but its data is not the expiry the actor armed: the history stays.
    running.wait_for_log("app", r"stale reminder clear-history ignored: ChatAgent racer", SLACK)
    fired = time.time()
    print(f"stale fire {fired - first_put:.1f}s after the first registration")
    if running.release.identical_reregistration_moves_due:
        assert fired >= second_put + due_seconds - 1, (fired - first_put, second_put - first_put)
    else:
        assert fired < second_put + due_seconds - 1, (fired - first_put, second_put - first_put)
    assert messages(running, "racer") == 2
    assert expired_lines(running, "racer") == []
