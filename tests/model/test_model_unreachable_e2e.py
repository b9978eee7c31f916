"""A model that is not there (LLM_BASE_URL names a closed port): every message is a clean 502
that names the model and the actor, and leaves the history as it was. Needs no `model` extra."""

from __future__ import annotations

import pytest

from daprlab import netcheck

pytestmark = pytest.mark.e2e
STEP = "01_actor_timers"
MODEL = "no-such-model"


def test_an_unreachable_model_is_a_502_and_the_history_stays(lab) -> None:
    url = f"http://127.0.0.1:{netcheck.free_port()}/v1"  # nothing listens there
    stack = lab(STEP, app_env={"LLM_BASE_URL": url, "LLM_MODEL": MODEL})
    resp = stack.app.post("/chat/gone", json={"content": "hello"})
    assert resp.status_code == 502, resp.text
    assert resp.json()["detail"] == (
        f"ChatAgent gone: the model {MODEL} at {url} failed: not reachable (Connection error.): "
        "is the model server running?; the history is unchanged"
    )
    assert stack.app.get("/chat/gone/history").json()["messages"] == []
    stack.wait_for_log("app", rf"^WARNING:\s+model call failed: ChatAgent gone: {MODEL}: ", 10)
    stack.wait_for_log("app", r"^WARNING:\s+answered 502: ChatAgent gone: ", 10)
    # A timer starts only with a recorded message: none was.
    assert stack.app.get("/chat/gone/timer").json()["running"] is False
