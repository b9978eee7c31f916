"""Step 02 without a runtime: routes, validation, and the one-shot reminder the actor registers."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

import pytest
from dapr.actor import Remindable
from dapr.actor.runtime._reminder_data import ActorReminderData
from dapr.actor.runtime._type_information import ActorTypeInformation
from fastapi.testclient import TestClient

from tests.support.steps import RecordingActorClient, actor_of

STEP = "02_actor_reminders"


def test_the_actor_is_remindable_as_the_sdk_checks_it(step) -> None:
    # The SDK only looks at the direct bases: without Remindable there, reminders are refused.
    assert Remindable in step.ChatAgent.__bases__
    assert ActorTypeInformation.create(step.ChatAgent).is_remindable()


def test_the_expiry_reminder_is_registered_without_a_period(step) -> None:
    # What ProcessMessage sends to arm the expiry: period null, which daprd reads as one-shot on
    # every release (a zero period, "0h0m0s0ms0μs", repeats from Dapr 1.15 on).
    client = RecordingActorClient()
    asyncio.run(actor_of(step, client, "unit")._arm_expiry())
    body = json.loads(client.bodies["register_reminder"])
    expires_at = base64.b64decode(body.pop("data")).decode()
    assert body == {"reminderName": "clear-history", "dueTime": "0h1m0s0ms0μs", "period": None}
    assert json.dumps(expires_at) in client.bodies["save_state"].decode()


def test_reminder_state_must_be_bytes(step) -> None:
    with pytest.raises(ValueError, match="only bytes"):
        ActorReminderData(step.REMINDER_NAME, "text", timedelta(seconds=1), None)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["get", "delete"])
def test_expiry_routes_validate_the_actor_id(step, method: str) -> None:
    resp = getattr(TestClient(step.app), method)("/chat/not%20ok/expiry")
    assert resp.status_code == 422


@pytest.mark.parametrize("method", ["get", "delete"])
def test_expiry_routes_answer_503_without_a_sidecar(step, method: str) -> None:
    resp = getattr(TestClient(step.app), method)("/chat/alice/expiry")
    assert resp.status_code == 503
    assert "no Dapr sidecar" in resp.json()["detail"]
