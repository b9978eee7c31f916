"""The base agent in every step: validation, bounded history, 503 without Dapr, the plumbing
installed (the plumbing itself is tested once, in tests/plumbing)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from daprlab.paths import steps
from lab_plumbing import accepted
from tests.support.steps import RecordingActorClient, actor_of, load_step

STEP_PARAMS = steps()


@pytest.fixture
def client(step) -> TestClient:
    # No lifespan: nothing registers with a sidecar, so routes that need Dapr answer 503.
    return TestClient(step.app)


def test_reply_is_a_deterministic_echo_without_a_model(step) -> None:
    assert not step.model.enabled  # LLM_BASE_URL unset: the model is off
    message = {"role": "user", "content": "hello"}
    reply = asyncio.run(step.compose_reply(actor_of(step, RecordingActorClient()), [], message))
    assert reply == "You said: hello"


def test_history_keeps_whole_pairs_newest_last(step) -> None:
    pairs = [
        m for i in range(step.HISTORY_MAX_PAIRS + 3)
        for m in ({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"})
    ]  # fmt: skip
    kept = step.trim_history(pairs)
    assert len(kept) == 2 * step.HISTORY_MAX_PAIRS
    assert kept[0] == {"role": "user", "content": "q3"}
    assert kept[-1] == pairs[-1]
    assert [m["role"] for m in kept[::2]] == ["user"] * step.HISTORY_MAX_PAIRS


@pytest.mark.parametrize(
    ("path", "body", "complaint"),
    [
        ("/chat/alice", {"content": ""}, "at least 1 character"),
        ("/chat/alice", {"content": "   "}, "content must not be blank"),
        ("/chat/alice", {"content": "x" * 4001}, "at most 4000 characters"),
        ("/chat/alice", {"role": "assistant", "content": "hi"}, "Input should be 'user'"),
        ("/chat/alice", {}, "Field required"),
        ("/chat/bad%20id", {"content": "hi"}, "String should match pattern"),
        ("/chat/" + "a" * 65, {"content": "hi"}, "String should match pattern"),
    ],
)
def test_bad_input_gets_a_422_that_says_why(client, path: str, body: dict, complaint: str) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == 422
    assert complaint in resp.text


def test_without_a_sidecar_chat_answers_503_with_the_fix(client) -> None:
    resp = client.post("/chat/alice", json={"content": "hi"})
    assert resp.status_code == 503
    assert "no Dapr sidecar at http://127.0.0.1:3500" in resp.json()["detail"]
    assert "uv run daprlab up" in resp.json()["detail"]
    assert client.get("/docs").status_code == 200


def test_the_docs_list_the_steps_routes_only(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/chat/{actor_id}" in paths
    sdk_routes = [p for p in paths if p.startswith("/actors/") or p in ("/dapr/config", "/healthz")]
    assert sdk_routes == []


@pytest.mark.parametrize("step_name", steps())
def test_daprd_needs_the_app_token_on_every_step(
    monkeypatch: pytest.MonkeyPatch, step_name: str
) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "s3cret")
    client = TestClient(load_step(step_name).app)
    assert client.get("/dapr/config").status_code == 401
    assert client.get("/dapr/config", headers={"dapr-api-token": "s3cret"}).status_code == 200


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        (
            "HISTORY_MAX_PAIRS",
            "0",
            "HISTORY_MAX_PAIRS must be a whole number of at least 1, got '0'",
        ),
        ("HISTORY_MAX_PAIRS", "-3", "got '-3'"),
        ("ACTOR_IDLE_TIMEOUT_SECONDS", "1.5", "got '1.5'"),
        ("ACTOR_CALL_TIMEOUT_SECONDS", "soon", "got 'soon'"),
    ],
)
@pytest.mark.parametrize("step_name", steps())
def test_a_bad_setting_stops_the_app_with_one_line(
    monkeypatch: pytest.MonkeyPatch, step_name: str, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=complaint):
        load_step(step_name)


def test_settings_are_read_as_whole_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISTORY_MAX_PAIRS", " 3 ")
    assert load_step("01_actor_timers").HISTORY_MAX_PAIRS == 3


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": "injected"},
        {"content": "   "},
        {"content": "x" * 4001},
        {"content": 12},
        ["not", "a", "message"],
    ],
)
def test_the_actor_refuses_what_the_public_api_refuses(step, message: object) -> None:
    agent = actor_of(step, RecordingActorClient())
    with pytest.raises(ValueError, match="ProcessMessage refused"):
        asyncio.run(agent.process_message(message))
    assert accepted(step.ChatMessage, {"content": " kept as written "}, "ProcessMessage") == {
        "role": "user",
        "content": " kept as written ",
    }
