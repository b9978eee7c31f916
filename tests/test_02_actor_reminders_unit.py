"""Step 02 without a runtime: routes, validation, and what the SDK sends for a one-shot reminder."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from dapr.actor import Remindable
from dapr.actor.runtime._reminder_data import ActorReminderData
from dapr.actor.runtime._type_information import ActorTypeInformation
from fastapi.testclient import TestClient

from tests.steps import load_step

STEP = "02_actor_reminders"


@pytest.fixture(scope="module")
def step():
    return load_step(STEP)


def test_the_actor_is_remindable_as_the_sdk_checks_it(step) -> None:
    # The SDK only looks at the direct bases: without Remindable there, reminders are refused.
    assert Remindable in step.ChatAgent.__bases__
    assert ActorTypeInformation.create(step.ChatAgent).is_remindable()


def test_one_shot_reminder_request_body(step) -> None:
    # What Actor.register_reminder sends with the step's serializer (ActorReminderData.as_dict).
    data = ActorReminderData(
        step.REMINDER_NAME, b"2026-01-01T10:00:00Z", timedelta(seconds=60), step.ONE_SHOT
    )
    body = json.loads(step.SERIALIZER.serialize(data.as_dict()))
    assert body == {
        "reminderName": "clear-history",
        "dueTime": "0h1m0s0ms0μs",
        "period": "0h0m0s0ms0μs",
        "data": base64.b64encode(b"2026-01-01T10:00:00Z").decode(),
    }


def test_reminder_state_must_be_bytes(step) -> None:
    with pytest.raises(ValueError, match="only bytes"):
        ActorReminderData(step.REMINDER_NAME, "text", timedelta(seconds=1), step.ONE_SHOT)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["get", "delete"])
def test_expiry_routes_validate_the_actor_id(step, method: str) -> None:
    resp = getattr(TestClient(step.app), method)("/chat/not%20ok/expiry")
    assert resp.status_code == 422


@pytest.mark.parametrize("method", ["get", "delete"])
def test_expiry_routes_answer_503_without_a_sidecar(step, method: str) -> None:
    resp = getattr(TestClient(step.app), method)("/chat/alice/expiry")
    assert resp.status_code == 503
    assert "no Dapr sidecar" in resp.json()["detail"]
