"""The harness works: a message goes through real daprd and the history is in real Redis."""

from __future__ import annotations

import json
import subprocess

import pytest

from daprlab.stack.command_lines import APP_ID
from daprlab.stack.process import process_gone

pytestmark = pytest.mark.e2e


def redis_hget(port: int, key: str, field: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "HGET", key, field],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.rstrip("\n")


def test_message_goes_through_dapr_and_lands_in_redis(lab) -> None:
    running = lab("01_actor_timers")

    resp = running.app.post("/chat/smoke", json={"content": "hello"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "actor_id": "smoke",
        "reply": {"role": "assistant", "content": "You said: hello"},
    }

    stored = redis_hget(running.stack.redis_port, f"{APP_ID}||ChatAgent||smoke||history", "data")
    assert json.loads(stored) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "You said: hello"},
    ]
    assert running.active_actors("ChatAgent") == 1
    assert running.app.get("/docs").status_code == 200


def test_stack_survives_restarts_with_state_intact(lab) -> None:
    running = lab("01_actor_timers")
    assert running.app.post("/chat/durable", json={"content": "remember me"}).status_code == 200

    running.restart_app()
    assert (
        running.app.get("/chat/durable/history").json()["messages"][0]["content"] == "remember me"
    )

    running.restart_app_and_sidecar()
    assert (
        running.app.get("/chat/durable/history").json()["messages"][0]["content"] == "remember me"
    )


def test_two_stacks_run_side_by_side(lab) -> None:
    first, second = lab("01_actor_timers"), lab("01_actor_timers")
    assert first.app.post("/chat/one", json={"content": "first"}).status_code == 200
    assert second.app.get("/chat/one/history").json()["messages"] == []


def test_placement_restart_keeps_state_and_calls_work_again(lab) -> None:
    running = lab("01_actor_timers")
    assert running.app.post("/chat/placed", json={"content": "before"}).status_code == 200
    [(_, first_pid)] = [entry for entry in running.stack.started if entry[0] == "placement"]

    running.restart_placement()

    assert process_gone(first_pid)
    assert [name for name, _ in running.stack.started].count("placement") == 2
    resp = running.app.post("/chat/placed", json={"content": "after"})
    assert resp.status_code == 200, resp.text
    history = running.app.get("/chat/placed/history").json()["messages"]
    assert [m["content"] for m in history] == [
        "before",
        "You said: before",
        "after",
        "You said: after",
    ]
