"""The Idempotency-Key plumbing without a runtime: the header's checks, the key's way into the
history, the lookup of a repeat, and the reused key as a 422 (end to end:
tests/steps/test_idempotency_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from lab_plumbing import accepted, keyed
from lab_plumbing.idempotency import (
    HEADER,
    KEY_FIELD,
    KEY_PATTERN,
    KEY_REUSED,
    REUSED_TYPE,
    IdempotencyKeyReused,
    earlier_reply,
    key_of,
)
from lab_plumbing.sidecar import actor_error_answer
from tests.plumbing.test_errors import daprd_wrapped
from tests.support.steps import RecordingActorClient, actor_of

STEP = "01_actor_timers"  # every step has the same base (tests/steps/test_steps_identical.py)
WHO = ("ChatAgent", "unit")


class Note(BaseModel):
    role: str = "user"
    content: str


def pair(content: str, key: str | None = None) -> list[dict[str, str]]:
    user = {"role": "user", "content": content} | ({KEY_FIELD: key} if key else {})
    return [user, {"role": "assistant", "content": f"You said: {content}"}]


def test_keyed_adds_the_key_only_when_one_was_sent() -> None:
    assert keyed(Note(content="hi"), None) == {"role": "user", "content": "hi"}
    assert keyed(Note(content="hi"), "k-1") == {"role": "user", "content": "hi", KEY_FIELD: "k-1"}


@pytest.mark.parametrize("key", ["a", "0b7c:try.2_x-y", "k" * 128])
def test_key_of_takes_what_the_header_takes(key: str) -> None:
    assert key_of({"content": "hi", KEY_FIELD: key}) == key


@pytest.mark.parametrize("key", ["", "has space", "k" * 129, "a/b", "café", 7, ["k"]])
def test_key_of_refuses_what_the_header_refuses(key: object) -> None:
    with pytest.raises(ValueError, match="does not match"):
        key_of({"content": "hi", KEY_FIELD: key})


@pytest.mark.parametrize("payload", [{"content": "hi"}, {KEY_FIELD: None}, ["a"], "text", None])
def test_no_key_is_none(payload: object) -> None:
    assert key_of(payload) is None


def test_the_actor_keeps_a_valid_key_and_refuses_a_bad_one(step) -> None:
    message = {"content": "hi", KEY_FIELD: "k-1"}
    assert accepted(step.ChatMessage, message, "ProcessMessage") == {
        "role": "user",
        "content": "hi",
        KEY_FIELD: "k-1",
    }
    with pytest.raises(ValueError, match="ProcessMessage refused: idempotency_key"):
        accepted(step.ChatMessage, {"content": "hi", KEY_FIELD: "no spaces"}, "ProcessMessage")


def test_a_repeat_gets_the_reply_stored_right_after_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = pair("one", "k1") + pair("two") + pair("three", "k3")
    message = {"role": "user", "content": "three", KEY_FIELD: "k3"}
    with caplog.at_level(logging.INFO, "lab_plumbing.idempotency"):
        assert earlier_reply(history, message, *WHO) == history[5]
    assert caplog.messages == ["ChatAgent unit answered a repeat of message 5"]
    assert earlier_reply(history, {**message, KEY_FIELD: "new"}, *WHO) is None
    assert earlier_reply(history, {"role": "user", "content": "three"}, *WHO) is None


def test_a_key_on_a_reply_is_never_taken_for_a_message() -> None:
    history = pair("one")
    history[1][KEY_FIELD] = "k1"  # only user messages carry a key; a forged one is not matched
    assert earlier_reply(history, {"role": "user", "content": "x", KEY_FIELD: "k1"}, *WHO) is None


def test_a_reused_key_with_another_message_is_refused() -> None:
    history = pair("one", "k1")
    with pytest.raises(IdempotencyKeyReused) as raised:
        earlier_reply(history, {"role": "user", "content": "other", KEY_FIELD: "k1"}, *WHO)
    assert raised.value.as_dict()["errorCode"] == KEY_REUSED
    assert raised.value.as_dict()["message"] == (
        f"{HEADER} k1 came with another message before (recorded message 1 of ChatAgent unit): "
        "send a new key with a new message"
    )
    json.dumps(raised.value.as_dict())  # the SDK sends it to daprd as JSON


@pytest.mark.parametrize("release", ["1.14", "1.15+"])
def test_the_route_answers_a_reused_key_with_a_422_like_the_others(release: str) -> None:
    answer = actor_error_answer(
        "ChatAgent unit", daprd_wrapped("Idempotency-Key k1 came ...", KEY_REUSED, release)
    )
    assert answer.status_code == 422
    assert answer.detail == [
        {"type": REUSED_TYPE, "loc": ["header", HEADER], "msg": "Idempotency-Key k1 came ..."}
    ]


def test_the_actor_records_a_keyed_message_once(step) -> None:
    client = RecordingActorClient()
    agent = actor_of(step, client)
    message = {"content": "hi", KEY_FIELD: "k1"}
    first = asyncio.run(agent.process_message(message))
    saves = [call for call in client.calls if call[0] == "save_state"]
    assert len(saves) == 1
    assert KEY_FIELD in client.bodies["save_state"].decode()
    # The history is in the SDK's cache now: the repeat is answered from it, nothing saved.
    assert asyncio.run(agent.process_message(message)) == first
    assert [call for call in client.calls if call[0] == "save_state"] == saves
    with pytest.raises(IdempotencyKeyReused):
        asyncio.run(agent.process_message({"content": "other", KEY_FIELD: "k1"}))
    assert [call for call in client.calls if call[0] == "save_state"] == saves


@pytest.mark.parametrize("key", ["", "has space", "k" * 129])
def test_a_bad_header_is_a_422_naming_it_before_any_actor_call(step, key: str) -> None:
    resp = TestClient(step.app).post("/chat/alice", json={"content": "hi"}, headers={HEADER: key})
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert (error["type"], error["loc"]) == ("string_pattern_mismatch", ["header", HEADER])


def test_a_good_header_goes_on_to_the_actor(step) -> None:
    # No lifespan, so no sidecar: the request passed the checks and reached the actor call.
    resp = TestClient(step.app).post("/chat/alice", json={"content": "hi"}, headers={HEADER: "k"})
    assert resp.status_code == 503, resp.text


def test_the_docs_show_the_header_with_its_rule(step) -> None:
    operation = TestClient(step.app).get("/openapi.json").json()["paths"]["/chat/{actor_id}"]
    (header,) = [p for p in operation["post"]["parameters"] if p["in"] == "header"]
    assert header["name"] == HEADER
    assert header["required"] is False
    assert header["schema"]["anyOf"][0]["pattern"] == KEY_PATTERN
    assert "the reply already given" in header["description"]
