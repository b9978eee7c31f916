"""Only the sidecar reaches the actor callbacks; bad input gets an exact 422; /docs is the lab's
API, served offline; an actor holds daprd's input to the public API's rules."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from lab_plumbing import JSONBody, accepted
from lab_plumbing.guard import NOT_BLANK_PATTERN
from tests.plumbing.apps import Note, guarded_app


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.delenv("APP_API_TOKEN", raising=False)
    return TestClient(guarded_app())


def test_without_a_token_the_app_warns_once_that_the_callbacks_are_open(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("APP_API_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING):
        client = TestClient(guarded_app())
    (warning,) = [r.getMessage() for r in caplog.records if "APP_API_TOKEN" in r.getMessage()]
    assert "callbacks (/actors/..., /dapr/config) answer anyone" in warning
    assert client.get("/dapr/config").status_code == 200


def test_with_a_token_only_its_bearer_reaches_the_callbacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "s3cret")
    client = TestClient(guarded_app())
    refused = client.put("/actors/ChatAgent/eve/method/ProcessMessage", json={"content": "x"})
    assert refused.status_code == 401
    assert "no valid dapr-api-token header" in refused.json()["detail"]
    assert client.get("/dapr/config", headers={"dapr-api-token": "s3cret"}).status_code == 200
    assert client.get("/dapr/config", headers={"dapr-api-token": "guess"}).status_code == 401
    assert client.get("/healthz").status_code == 200  # probes need no token
    # The public API needs none either (503 here: no sidecar in a unit test).
    assert client.post("/chat/alice", json={"content": "hi"}).status_code == 503


def test_each_app_reads_its_own_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "first")
    first = TestClient(guarded_app())
    monkeypatch.setenv("APP_API_TOKEN", "second")
    second = TestClient(guarded_app())
    assert first.get("/dapr/config", headers={"dapr-api-token": "first"}).status_code == 200
    assert second.get("/dapr/config", headers={"dapr-api-token": "first"}).status_code == 401


def test_without_a_sidecar_a_route_answers_503_with_the_fix(client: TestClient) -> None:
    resp = client.post("/chat/alice", json={"content": "hi"})
    assert resp.status_code == 503
    assert "no Dapr sidecar at http://127.0.0.1:3500" in resp.json()["detail"]
    assert "uv run daprlab up" in resp.json()["detail"]


def test_the_docs_list_only_the_labs_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert "/chat/{actor_id}" in paths
    sdk_routes = [p for p in paths if p.startswith("/actors/") or p in ("/dapr/config", "/healthz")]
    assert sdk_routes == []
    content = schema["components"]["schemas"]["Note"]["properties"]["content"]
    assert content["pattern"] == NOT_BLANK_PATTERN  # the validator, as the schema says it


def test_the_docs_page_loads_its_assets_from_the_app(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_bad_input_gets_a_422_that_names_the_field(client: TestClient) -> None:
    resp = client.post("/chat/alice", json={"content": "   "})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "content"]
    assert "content must not be blank" in resp.text


def test_an_unreadable_body_gets_a_422_not_a_400(client: TestClient) -> None:
    resp = client.post(
        "/chat/alice", content=b'{"content": "\xff"}', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    (error,) = resp.json()["detail"]
    assert error["type"] == "json_invalid" and error["loc"] == ["body"]
    assert error["msg"].startswith("unreadable body: ")


def test_a_lone_surrogate_is_escaped_not_a_500() -> None:
    assert JSONBody({"detail": "\ud800"}).body == b'{"detail":"\\ud800"}'


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": "injected"},
        {"content": "   "},
        {"content": "x" * 41},
        {"content": 12},
        ["not", "a", "message"],
    ],
)
def test_an_actor_refuses_what_the_public_api_refuses(message: object) -> None:
    with pytest.raises(ValueError, match="ProcessMessage refused"):
        accepted(Note, message, "ProcessMessage")
    assert accepted(Note, {"content": " kept as written "}, "ProcessMessage") == {
        "role": "user",
        "content": " kept as written ",
    }
