"""Step 01 without a runtime: when the timer ticks for the last time, and the timer routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.steps import load_step

STEP = "01_actor_timers"


@pytest.fixture(scope="module")
def step():
    return load_step(STEP)


def test_last_tick_with_the_defaults(step) -> None:
    # Period 5 s, TTL 60 s: first tick on the whole second 105, then 11 more, 5 s apart.
    assert step.last_tick_time(100.4) == 160


def test_last_tick_when_the_ttl_is_no_multiple_of_the_period(step, monkeypatch) -> None:
    # Seen on daprd 1.14.4 (period 4 s, TTL 6 s): ticks at 38 and 42 for a timer registered at
    # 34.08; a TTL counted from the registration would have allowed only the first.
    monkeypatch.setattr(step, "TIMER_PERIOD", timedelta(seconds=4))
    monkeypatch.setattr(step, "TIMER_TTL", timedelta(seconds=6))
    assert step.last_tick_time(34.08) == 42


@pytest.mark.parametrize("method", ["get", "delete"])
def test_timer_routes_validate_the_actor_id(step, method: str) -> None:
    resp = getattr(TestClient(step.app), method)("/chat/not%20ok/timer")
    assert resp.status_code == 422


@pytest.mark.parametrize("method", ["get", "delete"])
def test_timer_routes_answer_503_without_a_sidecar(step, method: str) -> None:
    resp = getattr(TestClient(step.app), method)("/chat/alice/timer")
    assert resp.status_code == 503
    assert "no Dapr sidecar" in resp.json()["detail"]
