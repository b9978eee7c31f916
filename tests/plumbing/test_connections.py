"""The keep-alive pool's seams into the SDK, and the SDK internals they rely on.

These fail loudly when the SDK changes under the one override (`_client` of DaprActorHttpClient);
tests/plumbing/test_shared_session.py shows end to end that connections are reused and that a
sidecar restart leaves no dead connection behind.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from dapr.clients import DaprActorHttpClient
from dapr.clients.health import DaprHealth
from dapr.clients.http.client import DaprHttpClient

from lab_plumbing import EXACT_JSON
from lab_plumbing.connections import (
    KeepAlivePool,
    SharedSessionActorClient,
    SharedSessionHttpClient,
)


def test_the_sdk_actor_client_sends_every_call_through_its_client_attribute() -> None:
    source = inspect.getsource(DaprActorHttpClient)
    assert "self._client = DaprHttpClient(" in source, "the SDK no longer builds `_client`"
    methods = [
        name
        for name, member in inspect.getmembers(DaprActorHttpClient, inspect.iscoroutinefunction)
        if not name.startswith("_")
    ]
    assert len(methods) == 7, methods
    for name in methods:
        body = inspect.getsource(getattr(DaprActorHttpClient, name))
        assert "await self._client.send_bytes(" in body, f"{name} no longer uses `_client`"


def test_the_sdk_opens_a_session_per_call() -> None:
    # Why the pool exists (and what SIDECAR_CONNECTIONS=per-call measures): dapr 1.14.
    assert "async with aiohttp.ClientSession() as session:" in inspect.getsource(
        DaprHttpClient.send_bytes
    )


def test_send_bytes_takes_what_the_sdk_passes() -> None:
    ours = inspect.signature(SharedSessionHttpClient.send_bytes).parameters
    sdk = inspect.signature(DaprHttpClient.send_bytes).parameters
    assert list(ours) == list(sdk)


def test_the_actor_client_holds_the_shared_session_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(DaprHealth, "wait_until_ready", staticmethod(lambda: None))
    pool = KeepAlivePool()
    client = SharedSessionActorClient(EXACT_JSON, 7, pool)
    assert isinstance(client._client, SharedSessionHttpClient)
    assert client._client.timeout_seconds == 7
    assert client._client.pool is pool


def test_the_pool_is_open_only_while_the_app_runs() -> None:
    pool = KeepAlivePool()
    with pytest.raises(RuntimeError, match="the keep-alive pool to daprd is not open"):
        _ = pool.session

    async def run() -> None:
        async with pool.open():
            session = pool.session
            assert not session.closed
        assert session.closed

    asyncio.run(run())
    with pytest.raises(RuntimeError):
        _ = pool.session
