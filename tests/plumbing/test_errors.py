"""Each way a call to daprd fails, as an error that says what failed and how to fix it."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable

import aiohttp
import pytest
from dapr.actor import ActorId, ActorProxy
from dapr.clients.exceptions import DaprInternalError
from fastapi import HTTPException

from lab_plumbing import EXACT_JSON, Sidecar, error_answer, state_store_errors, unwrap_actor_error
from tests.support.steps import DAPRD_ERROR_WRAPPINGS, RecordingActorClient

CALL_TIMEOUT_SECONDS = 30


def daprd_wrapped(message: str, code: str, release: str = "1.14") -> DaprInternalError:
    """An actor method's failure as daprd hands it on: its JSON body behind daprd's prefix."""
    inner = {"message": message, "errorCode": code, "raw": None}
    return DaprInternalError(
        DAPRD_ERROR_WRAPPINGS[release] + json.dumps(inner),
        "ERR_ACTOR_INVOKE_METHOD",
        raw_response_bytes=b"{}",
    )


@pytest.mark.parametrize("release", DAPRD_ERROR_WRAPPINGS)
def test_unwrap_actor_error_takes_off_what_daprd_wrapped(release: str) -> None:
    wrapped = daprd_wrapped("maximum stack depth exceeded", "ERR_X", release)
    assert unwrap_actor_error(wrapped) == ("ERR_X", "maximum stack depth exceeded")


@pytest.mark.parametrize(
    "message",
    [
        "connection refused",
        *(wrapping + "not json" for wrapping in DAPRD_ERROR_WRAPPINGS.values()),
        DAPRD_ERROR_WRAPPINGS["1.15+"] + '["json, but no error of ours"]',
        "error from actor service: (500 {}",
    ],
)
def test_unwrap_actor_error_keeps_other_messages(message: str) -> None:
    assert unwrap_actor_error(DaprInternalError(message, "ERR_Y")) == ("ERR_Y", message)


def test_a_failed_state_call_is_raised_anew_and_encodable() -> None:
    with pytest.raises(DaprInternalError) as raised, state_store_errors():
        raise daprd_wrapped("connection refused", "ERR_STATE_GET")
    assert raised.value.as_dict() == {
        "message": "the actor state store failed: connection refused",
        "errorCode": "ERR_STATE_GET",
        "raw_response_bytes": None,  # JSON-encodable, unlike the SDK's own error
    }


def test_an_error_answer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        answer = error_answer(503, "no sidecar")
    assert (answer.status_code, answer.detail) == (503, "no sidecar")
    assert caplog.messages == ["answered 503: no sidecar"]


# ---- an actor call, each way it fails ---------------------------------------------------------
async def raising(err: BaseException) -> None:
    raise err


def answer_to(sidecar: Sidecar, call: Awaitable[object]) -> HTTPException:
    agent = ActorProxy(RecordingActorClient(), "ChatAgent", ActorId("alice"), None, EXACT_JSON)
    with pytest.raises(HTTPException) as raised:
        asyncio.run(sidecar.call_actor(agent, call))
    return raised.value


@pytest.fixture
def sidecar() -> Sidecar:
    """A sidecar address where nothing listens (a bound port that does not listen refuses)."""
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        sidecar.url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        yield sidecar


def test_no_connection_to_daprd_answers_503_with_the_fix(sidecar: Sidecar) -> None:
    answer = answer_to(sidecar, raising(aiohttp.ClientConnectionError("Cannot connect")))
    assert answer.status_code == 503
    assert answer.detail == (
        f"Dapr sidecar not reachable at {sidecar.url} (Cannot connect): is daprd running? "
        "`uv run daprlab up <step>` starts it with the app"
    )


def test_a_timeout_without_placement_answers_503_that_names_placement(sidecar: Sidecar) -> None:
    answer = answer_to(sidecar, raising(TimeoutError()))
    assert answer.status_code == 503
    assert answer.detail == (
        f"ChatAgent alice did not answer within {CALL_TIMEOUT_SECONDS}s: the sidecar reports "
        "'no answer from the sidecar': is the placement service running?"
    )


@pytest.mark.parametrize("release", DAPRD_ERROR_WRAPPINGS)
def test_an_actor_that_raised_timeout_error_answers_504(sidecar: Sidecar, release: str) -> None:
    failed = daprd_wrapped("TimeoutError('waited 5s for FollowUpAgent alice')", "UNKNOWN", release)
    answer = answer_to(sidecar, raising(failed))
    assert answer.status_code == 504
    assert answer.detail == (
        "ChatAgent alice timed out: TimeoutError('waited 5s for FollowUpAgent alice')"
    )


def test_no_host_for_the_actor_answers_503_that_names_placement(sidecar: Sidecar) -> None:
    failed = DaprInternalError("did not find address for actor ChatAgent/alice", "ERR_ACTOR")
    answer = answer_to(sidecar, raising(failed))
    assert answer.status_code == 503
    assert answer.detail.startswith("no host for ChatAgent alice: is the placement service")


def test_any_other_failure_answers_500_with_the_actors_own_error(sidecar: Sidecar) -> None:
    failed = daprd_wrapped("ValueError('ProcessMessage refused: ...')", "UNKNOWN")
    answer = answer_to(sidecar, raising(failed))
    assert answer.status_code == 500
    assert answer.detail == (
        "ChatAgent alice failed: UNKNOWN: ValueError('ProcessMessage refused: ...')"
    )
