"""The base agent in every step: validation, bounded history, exact JSON, 503 without Dapr."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from dapr.clients.exceptions import DaprInternalError
from dapr.serializers import DefaultJSONSerializer
from fastapi.testclient import TestClient

from daprlab.paths import steps
from tests.steps import DAPRD_ERROR_WRAPPINGS, load_step

TRICKY_TEXT = ["5s", "1h30m", "2024-01-02 is a date", "2024-01-02T10:00:00Z", "12", "null", "ünï ✓"]


@pytest.fixture(params=steps())
def step(request: pytest.FixtureRequest):
    return load_step(request.param)


@pytest.fixture
def client(step) -> TestClient:
    # No lifespan: nothing registers with a sidecar, so routes that need Dapr answer 503.
    return TestClient(step.app)


def test_reply_is_a_deterministic_echo(step) -> None:
    assert step.compose_reply("hello") == "You said: hello"


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


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_exact_serializer_keeps_text_as_written(step, text: str) -> None:
    data = step.SERIALIZER.serialize({"content": text})
    assert step.SERIALIZER.deserialize(data) == {"content": text}


def test_the_sdk_default_decoder_would_not(step) -> None:
    # Why the lab has its own serializer: the SDK turns duration-looking text into a timedelta.
    assert DefaultJSONSerializer().deserialize(b'{"content": "5s"}') == {
        "content": timedelta(seconds=5)
    }


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


def daprd_wrapped(message: str, code: str, release: str = "1.14") -> DaprInternalError:
    """An actor method's failure as daprd hands it on: its JSON body behind daprd's prefix."""
    inner = {"message": message, "errorCode": code, "raw": None}
    return DaprInternalError(
        DAPRD_ERROR_WRAPPINGS[release] + json.dumps(inner),
        "ERR_ACTOR_INVOKE_METHOD",
        raw_response_bytes=b"{}",
    )


@pytest.mark.parametrize("release", DAPRD_ERROR_WRAPPINGS)
def test_unwrap_actor_error_takes_off_what_daprd_wrapped(step, release: str) -> None:
    wrapped = daprd_wrapped("maximum stack depth exceeded", "ERR_X", release)
    assert step.unwrap_actor_error(wrapped) == ("ERR_X", "maximum stack depth exceeded")


@pytest.mark.parametrize(
    "message",
    [
        "connection refused",
        *(wrapping + "not json" for wrapping in DAPRD_ERROR_WRAPPINGS.values()),
        DAPRD_ERROR_WRAPPINGS["1.15+"] + '["json, but no error of ours"]',
        "error from actor service: (500 {}",
    ],
)
def test_unwrap_actor_error_keeps_other_messages(step, message: str) -> None:
    assert step.unwrap_actor_error(DaprInternalError(message, "ERR_Y")) == ("ERR_Y", message)


def test_a_failed_state_call_is_raised_anew_and_encodable(step) -> None:
    with pytest.raises(DaprInternalError) as raised, step.state_store_errors():
        raise daprd_wrapped("connection refused", "ERR_STATE_GET")
    assert raised.value.as_dict() == {
        "message": "the actor state store failed: connection refused",
        "errorCode": "ERR_STATE_GET",
        "raw_response_bytes": None,  # JSON-encodable, unlike the SDK's own error
    }


# ---- only the sidecar reaches the actor callbacks; /docs is the lab's API, served offline ----


@pytest.mark.parametrize("step_name", steps())
def test_without_a_token_the_app_warns_once_that_the_callbacks_are_open(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, step_name: str
) -> None:
    monkeypatch.delenv("APP_API_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING):
        client = TestClient(load_step(step_name).app)
    (warning,) = [r.getMessage() for r in caplog.records if "APP_API_TOKEN" in r.getMessage()]
    assert "callbacks (/actors/..., /dapr/config) answer anyone" in warning
    assert client.get("/dapr/config").status_code == 200


@pytest.mark.parametrize("step_name", steps())
def test_with_a_token_only_its_bearer_reaches_the_callbacks(
    monkeypatch: pytest.MonkeyPatch, step_name: str
) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "s3cret")
    client = TestClient(load_step(step_name).app)
    refused = client.put("/actors/ChatAgent/eve/method/ProcessMessage", json={"content": "x"})
    assert refused.status_code == 401
    assert "no valid dapr-api-token header" in refused.json()["detail"]
    assert client.get("/dapr/config", headers={"dapr-api-token": "s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes need no token
    # The public API needs none either (503 here: no sidecar in a unit test).
    assert client.post("/chat/alice", json={"content": "hi"}).status_code == 503


def test_the_docs_list_only_the_labs_routes(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/chat/{actor_id}" in paths
    sdk_routes = [p for p in paths if p.startswith("/actors/") or p in ("/dapr/config", "/healthz")]
    assert sdk_routes == []


def test_the_docs_page_loads_its_assets_from_the_app(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url


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
    with pytest.raises(ValueError, match="ProcessMessage refused"):
        step.accepted_message(message)
    assert step.accepted_message({"content": " kept as written "}) == {
        "role": "user",
        "content": " kept as written ",
    }
