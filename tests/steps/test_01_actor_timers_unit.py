"""Step 01 without a runtime: the timer's last tick, its stop on deactivation, and its routes."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import aiohttp
import pytest
from dapr.clients.exceptions import DaprInternalError
from fastapi.testclient import TestClient

from tests.support.steps import RecordingActorClient, actor_of

STEP = "01_actor_timers"


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


def test_deactivation_stops_the_timer(step, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=step.logger.name)
    client = RecordingActorClient()
    asyncio.run(actor_of(step, client, "leaving")._on_deactivate())
    assert client.calls == [("unregister_timer", "ChatAgent", "leaving", step.TIMER_NAME)]
    assert caplog.messages == [
        "timer stopped on deactivation: ChatAgent leaving",
        "ChatAgent leaving deactivated",
    ]


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        pytest.param(
            DaprInternalError("failed to delete timer", "ERR_ACTOR_TIMER_DELETE"),
            "failed to delete",
            id="sidecar error",
        ),
        pytest.param(
            aiohttp.ClientConnectionError("Cannot connect to host"),
            "Cannot connect to host",
            id="no sidecar",
        ),
        pytest.param(RecordingActorClient.HANG, "no answer within 0.1s", id="hung sidecar"),
    ],
)
def test_deactivation_goes_on_when_the_timer_cannot_be_stopped(
    step, monkeypatch, caplog: pytest.LogCaptureFixture, outcome: object, reason: str
) -> None:
    monkeypatch.setattr(step, "TIMER_STOP_TIMEOUT_SECONDS", 0.1)
    caplog.set_level(logging.INFO, logger=step.logger.name)
    asyncio.run(actor_of(step, RecordingActorClient(outcome), "stuck")._on_deactivate())
    warning, deactivated = caplog.records
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith("timer not stopped on deactivation: ChatAgent stuck: ")
    assert reason in warning.getMessage()
    assert deactivated.getMessage() == "ChatAgent stuck deactivated"
