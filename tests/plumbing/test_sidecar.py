"""The Sidecar: state per app (four steps load in one process), registration once daprd answers,
and the benchmark's switch between the keep-alive pool and the SDK's own clients."""

from __future__ import annotations

import asyncio
import socket

import pytest
from dapr.actor import ActorProxyFactory
from dapr.clients.health import DaprHealth
from fastapi import HTTPException

from lab_plumbing import Sidecar
from lab_plumbing.connections import SharedSessionProxyFactory
from lab_plumbing.sidecar import CONNECTIONS_SETTING, PER_CALL, SHARED, MetadataUnreadable

CALL_TIMEOUT_SECONDS = 7
FOLLOW_UP_TIMEOUT_SECONDS = 2


@pytest.fixture
def no_health_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's clients wait for daprd in their constructor; these tests make clients only."""
    monkeypatch.setattr(DaprHealth, "wait_until_ready", staticmethod(lambda: None))


def nowhere() -> str:
    """A sidecar address where nothing listens (a bound port that does not listen refuses)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}"


def registered(sidecar: Sidecar) -> None:
    """Run the registration as the lifespan does once daprd answers."""

    async def register() -> None:
        pass

    asyncio.run(sidecar._register(register))


def test_proxies_answer_503_until_the_actors_are_registered(no_health_wait: None) -> None:
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    with pytest.raises(HTTPException) as raised:
        sidecar.proxy_factory()
    assert raised.value.status_code == 503
    assert "start the app with its sidecar (`uv run daprlab up <step>`)" in raised.value.detail
    registered(sidecar)
    assert sidecar.proxy_factory() is sidecar.proxy_factory()


def test_two_apps_share_nothing(no_health_wait: None) -> None:
    first, second = Sidecar(CALL_TIMEOUT_SECONDS), Sidecar(CALL_TIMEOUT_SECONDS)
    registered(first)
    assert first.registered.is_set() and not second.registered.is_set()
    registered(second)
    assert first.proxy_factory() is not second.proxy_factory()
    assert first.actor_factory() is not second.actor_factory()


def test_a_proxy_factory_per_timeout(no_health_wait: None) -> None:
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    registered(sidecar)
    default, follow_up = sidecar.proxy_factory(), sidecar.proxy_factory(FOLLOW_UP_TIMEOUT_SECONDS)
    assert isinstance(default, SharedSessionProxyFactory)
    assert default.client._client.timeout_seconds == CALL_TIMEOUT_SECONDS
    assert follow_up.client._client.timeout_seconds == FOLLOW_UP_TIMEOUT_SECONDS
    assert sidecar.actor_factory() is sidecar.actor_factory()  # one client for every actor type


def test_per_call_leaves_the_sdks_own_clients(
    monkeypatch: pytest.MonkeyPatch, no_health_wait: None
) -> None:
    monkeypatch.setenv(CONNECTIONS_SETTING, PER_CALL)
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    registered(sidecar)
    assert sidecar.connections == PER_CALL
    assert type(sidecar.proxy_factory()) is ActorProxyFactory
    assert sidecar.actor_factory() is None  # register_actor's default: the SDK's own client


def test_shared_is_the_default_and_a_bad_value_stops_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONNECTIONS_SETTING, raising=False)
    assert Sidecar(CALL_TIMEOUT_SECONDS).connections == SHARED
    monkeypatch.setenv(CONNECTIONS_SETTING, "pooled")
    with pytest.raises(SystemExit, match="SIDECAR_CONNECTIONS must be one of shared, per-call"):
        Sidecar(CALL_TIMEOUT_SECONDS)


def test_without_a_sidecar_the_app_starts_and_waits_for_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    sidecar.url = nowhere()
    calls = []

    async def register() -> None:
        calls.append("registered")

    async def run() -> None:
        async with sidecar.connected(register):
            assert not await sidecar.ready()
            await asyncio.sleep(0)  # the waiting task logs and polls in the background

    with caplog.at_level("WARNING"):
        asyncio.run(run())
    assert calls == [] and not sidecar.registered.is_set()
    waiting = f"no Dapr sidecar at {sidecar.url} yet: /chat answers 503"
    assert any(m.startswith(waiting) for m in caplog.messages)


def test_metadata_names_what_went_wrong() -> None:
    sidecar = Sidecar(CALL_TIMEOUT_SECONDS)
    sidecar.url = nowhere()
    problem = "cannot read the Dapr sidecar's metadata at"
    with pytest.raises(MetadataUnreadable, match=problem) as raised:
        asyncio.run(sidecar.metadata())
    assert "Cannot connect to host" in str(raised.value)
    assert asyncio.run(sidecar.placement_status()) == "no answer from the sidecar"
