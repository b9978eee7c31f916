"""Step 04 without a runtime: the default config, and /runtime/actors when the sidecar fails."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from lab_plumbing import EXACT_JSON
from lab_plumbing.sidecar import SIDECAR_CHECK_TIMEOUT_SECONDS
from tests.support.steps import DRAIN_CLAMPED_FROM

STEP = "04_runtime_config"
SETTINGS = [
    "ACTOR_IDLE_TIMEOUT_SECONDS",
    "ACTOR_SCAN_INTERVAL_SECONDS",
    "DRAIN_ONGOING_CALL_TIMEOUT_SECONDS",
    "DRAIN_REBALANCED_ACTORS",
    "REENTRANCY_ENABLED",
    "REENTRANCY_MAX_STACK_DEPTH",
    "REMINDERS_STORAGE_PARTITIONS",
    "QUICK_IDLE_TIMEOUT_SECONDS",
]
LOOPBACK = "127.0.0.1"


def serve(step, monkeypatch: pytest.MonkeyPatch, port: int) -> TestClient:
    """The app, without its lifespan, pointed at a sidecar on `port`."""
    monkeypatch.setattr(step.sidecar, "url", f"http://{LOOPBACK}:{port}")
    return TestClient(step.app)


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections but never answers: a hung sidecar."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        yield sock.getsockname()[1]


@contextmanager
def fake_sidecar(status: int, body: bytes) -> Iterator[int]:
    """A sidecar whose /v1.0/metadata answers `status` with a JSON content type and `body`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server calls
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_defaults_are_the_runtime_defaults_but_the_drain_timeout(step) -> None:
    config = json.loads(EXACT_JSON.serialize(step.RUNTIME_CONFIG))
    # ChatAgent joins the list in the lifespan, which this test does not run.
    assert config.pop("entities") == ["QuickChatAgent"]
    assert config == {
        "actorIdleTimeout": "1h0m0s0ms0μs",
        "actorScanInterval": "0h0m30s0ms0μs",
        "drainOngoingCallTimeout": "0h0m20s0ms0μs",  # runtime 1.14: 60 s
        "drainRebalancedActors": True,
        "reentrancy": {"enabled": False, "maxStackDepth": 32},
        # 0 partitions: the SDK leaves the field out, and daprd keeps one record per type.
        "entitiesConfig": [
            {
                "entities": ["QuickChatAgent"],
                "actorIdleTimeout": "0h0m10s0ms0μs",
                "drainOngoingCallTimeout": "0h0m20s0ms0μs",
                "drainRebalancedActors": True,
            }
        ],
    }


def test_the_default_drain_timeout_is_below_the_clamp_of_current_releases(step) -> None:
    assert step.DRAIN_ONGOING_CALL_TIMEOUT < DRAIN_CLAMPED_FROM


def test_active_actors_counts_each_type_and_fills_in_zero(step, monkeypatch) -> None:
    metadata = {"actorRuntime": {"activeActors": [{"type": "ChatAgent", "count": 2}]}}
    with fake_sidecar(200, json.dumps(metadata).encode()) as port:
        resp = serve(step, monkeypatch, port).get("/runtime/actors")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"ChatAgent": 2, "QuickChatAgent": 0}


def test_active_actors_without_a_sidecar_answers_503_with_the_fix(
    step, monkeypatch, closed_port: int
) -> None:
    resp = serve(step, monkeypatch, closed_port).get("/runtime/actors")
    assert resp.status_code == 503, resp.text
    detail = resp.json()["detail"]
    assert f"cannot read the Dapr sidecar's metadata at http://{LOOPBACK}:{closed_port}" in detail
    assert "Cannot connect to host" in detail
    assert detail.endswith(
        "is daprd running? `uv run daprlab up 04_runtime_config` starts it with the app"
    )


def test_active_actors_gives_up_on_a_hung_sidecar(step, monkeypatch, silent_port: int) -> None:
    resp = serve(step, monkeypatch, silent_port).get("/runtime/actors")
    assert resp.status_code == 503, resp.text
    assert f"(no answer within {SIDECAR_CHECK_TIMEOUT_SECONDS}s)" in resp.json()["detail"]
    assert "uv run daprlab up 04_runtime_config" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"errorCode":"ERR_INTERNAL"}', "500, message='Internal Server Error'"),
        (200, b"not json", "Expecting value"),
    ],
)
def test_active_actors_never_reads_a_bad_answer_as_zero(
    step, monkeypatch, status: int, body: bytes, reason: str
) -> None:
    with fake_sidecar(status, body) as port:
        resp = serve(step, monkeypatch, port).get("/runtime/actors")
        assert resp.status_code == 503, resp.text
        assert reason in resp.json()["detail"]
        assert "uv run daprlab up 04_runtime_config" in resp.json()["detail"]
