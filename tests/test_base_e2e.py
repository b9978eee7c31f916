"""The base agent on real Dapr: exact round-trips, and clear errors when a part is missing."""

from __future__ import annotations

import pytest

from daprlab import netcheck
from daprlab.wait import wait_for
from tests.test_base_unit import TRICKY_TEXT

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
    running = lab(STEP)
    assert running.app.post("/chat/keep", json={"content": "before"}).status_code == 200
    running.stack.control["redis"].stop()  # Redis saves its data on the way down

    resp = running.app.post("/chat/keep", json={"content": "during"})
    assert resp.status_code == 500
    assert resp.json()["detail"].startswith("ChatAgent keep failed: ")
    assert "the actor state store failed: " in resp.json()["detail"]

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
    running.wait_for_log("app", r"ChatAgent registered", 30)
    assert running.app.post("/chat/early", json={"content": "hi"}).status_code == 200
