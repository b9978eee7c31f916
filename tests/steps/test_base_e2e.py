"""The base agent on real Dapr: exact round-trips, and clear errors when a part is missing."""

from __future__ import annotations

import signal

import pytest

from daprlab import netcheck
from daprlab.wait import wait_for
from tests.plumbing.test_serializer import TRICKY_TEXT

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"


def test_any_user_text_round_trips_exactly(lab) -> None:
    running = lab(STEP, app_env={"HISTORY_MAX_PAIRS": str(len(TRICKY_TEXT))})
    for text in TRICKY_TEXT:
        resp = running.app.post("/chat/exact", json={"content": text})
        assert resp.status_code == 200, resp.text
        assert resp.json()["reply"]["content"] == f"You said: {text}"
    history = running.app.get("/chat/exact/history").json()["messages"]
    assert [m["content"] for m in history[::2]] == TRICKY_TEXT


def test_dead_sidecar_gives_503_and_a_fix(lab) -> None:
    running = lab(STEP)
    running.stack.instances[0].daprd.stop()
    resp = running.app.post("/chat/nosidecar", json={"content": "hi"})
    assert resp.status_code == 503
    assert "Dapr sidecar not reachable at http://127.0.0.1:" in resp.json()["detail"]
    assert "is daprd running?" in resp.json()["detail"]


def test_store_outage_gives_a_5xx_naming_the_actor_and_loses_nothing(lab) -> None:
    # A read during the outage waits on daprd's retries: answer 504 sooner than the default 30 s.
    # Long enough for daprd to give up on the write (measured with Redis stopped: under 10 s on
    # 1.14.4, 14.9 s on 1.18.3; the read 30.6 s on 1.18.3).
    running = lab(STEP, app_env={"ACTOR_CALL_TIMEOUT_SECONDS": "20"})
    assert running.app.post("/chat/keep", json={"content": "before"}).status_code == 200
    running.stack.control["redis"].stop()  # Redis saves its data on the way down

    resp = running.app.post("/chat/keep", json={"content": "during"})
    assert resp.status_code == 500
    assert resp.json()["detail"].startswith("ChatAgent keep failed: ")
    assert "the actor state store failed: " in resp.json()["detail"]
    # Reading fails too (500, or 504 while daprd retries): never an empty history instead.
    resp = running.app.get("/chat/keep/history")
    assert resp.status_code in (500, 504), resp.text
    assert resp.json()["detail"].startswith("ChatAgent keep ")

    running.stack.start_redis()
    history = running.app.get("/chat/keep/history")
    assert history.status_code == 200
    assert [m["content"] for m in history.json()["messages"]] == ["before", "You said: before"]
    # The failed message is not kept in memory either, to be saved with the next one.
    assert running.app.post("/chat/keep", json={"content": "after"}).status_code == 200
    history = running.app.get("/chat/keep/history").json()["messages"]
    assert [m["content"] for m in history][::2] == ["before", "after"]


def test_placement_outage_gives_503_naming_placement(lab) -> None:
    running = lab(STEP, app_env={"ACTOR_CALL_TIMEOUT_SECONDS": "3"})
    assert running.app.post("/chat/known", json={"content": "hi"}).status_code == 200
    running.stack.control["placement"].stop()
    wait_for(
        lambda: running.metadata()["actorRuntime"]["placement"] == "placement: disconnected",
        30,
        "the sidecar to notice",
    )
    # "disconnected" comes first; daprd 1.14 still serves calls from its last placement table
    # until its first reconnection fails. Then it deactivates its actors and drops the table
    # (dapr/dapr pkg/actors/placement, establishStreamConn): from then on a call waits for a
    # table that never comes, and the app answers 503 after ACTOR_CALL_TIMEOUT_SECONDS.
    # A read of another actor shows when that is; a daprd that kept serving fails the wait.
    wait_for(
        lambda: running.app.get("/chat/probe/history").status_code == 503,
        30,
        "the sidecar to drop its placement table",
    )

    # The same on 1.14.4, 1.16.5 and 1.18.3 once the table is dropped (a 1.16.5 sidecar seen
    # serving a moment after "disconnected" was that same window).
    for actor in ("known", "unknown"):
        resp = running.app.post(f"/chat/{actor}", json={"content": "hi"})
        assert resp.status_code == 503, resp.text
        assert "placement" in resp.json()["detail"]


def test_app_started_before_its_sidecar_answers_503_then_serves(lab) -> None:
    running = lab(STEP)
    inst = running.stack.instances[0]
    running.stack.stop_instance(inst)

    running.stack.start_app(inst)
    wait_for(lambda: netcheck.http_status(f"{inst.app_url}/docs") == 200, 30, "the app alone")
    resp = running.app.post("/chat/early", json={"content": "hi"})
    assert resp.status_code == 503
    assert "uv run daprlab up" in resp.json()["detail"]

    running.stack.start_sidecar(inst)
    running.stack.wait_ready(inst)
    # The second app's own line (the first app of the stack logged one before it was stopped):
    # on 1.18 daprd is ready before the app has seen it.
    running.wait_for_log("app", r"ChatAgent registered", 30, count=2)
    assert running.app.post("/chat/early", json={"content": "hi"}).status_code == 200


def test_an_actor_slower_than_the_call_timeout_gives_504_and_loses_nothing(lab) -> None:
    running = lab(STEP, app_env={"ACTOR_CALL_TIMEOUT_SECONDS": "2"})
    assert running.app.post("/chat/slow", json={"content": "hi"}).status_code == 200
    redis = running.stack.control["redis"]
    # A paused Redis holds the actor's save (reads come from the SDK's in-process cache).
    redis.signal(signal.SIGSTOP)
    try:
        resp = running.app.post("/chat/slow", json={"content": "late"})
    finally:
        redis.signal(signal.SIGCONT)
    assert resp.status_code == 504, resp.text
    assert resp.json()["detail"] == "ChatAgent slow did not answer within 2s"

    # A 504 says "no answer in time", not "failed": the actor finishes once Redis is back.
    def recorded() -> list[str] | None:
        resp = running.app.get("/chat/slow/history")
        contents = [m["content"] for m in resp.json()["messages"]] if resp.is_success else []
        return contents if len(contents) == 4 else None

    assert wait_for(recorded, 30, "the late message") == [
        "hi",
        "You said: hi",
        "late",
        "You said: late",
    ]
    assert running.app.post("/chat/slow", json={"content": "again"}).status_code == 200


def test_history_keeps_the_newest_whole_pairs(lab) -> None:
    running = lab(STEP, app_env={"HISTORY_MAX_PAIRS": "2"})
    for n in range(1, 4):
        assert running.app.post("/chat/short", json={"content": f"m{n}"}).status_code == 200
    history = running.app.get("/chat/short/history").json()["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "m2"),
        ("assistant", "You said: m2"),
        ("user", "m3"),
        ("assistant", "You said: m3"),
    ]
