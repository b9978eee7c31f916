"""One pool of keep-alive connections to daprd, and the SDK seams that send through it.

The SDK (dapr 1.14) opens a new aiohttp session, so a new TCP connection, for each call to daprd
(`DaprHttpClient.send_bytes`); these send every call the app makes (actor proxies, actor state,
timers, reminders) through one session, which `KeepAlivePool` holds per app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from dapr.actor import Actor, ActorId, ActorInterface, ActorProxy
from dapr.actor.client.proxy import ActorFactoryBase
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.clients import DaprActorClientBase, DaprActorHttpClient
from dapr.clients.http.client import DaprHttpClient
from dapr.clients.http.conf import CONTENT_TYPE_HEADER, DAPR_API_TOKEN_HEADER
from dapr.conf import settings


class KeepAlivePool:
    """The shared session of one app, open while the app runs."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """A connection daprd closed (a sidecar restart) leaves the pool by itself; the next call
        opens a new one."""
        # No cap on connections: a call into an actor holds one while the actor's own state calls
        # need more, so a capped pool (aiohttp's default is 100) deadlocks under a burst.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            yield
        finally:
            session, self._session = self._session, None
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the keep-alive pool to daprd is not open (the app's lifespan is)")
        return self._session


class SharedSessionHttpClient(DaprHttpClient):
    """The SDK's HTTP client to daprd, sending through the pool's session."""

    def __init__(self, message_serializer: Any, timeout_seconds: int, pool: KeepAlivePool) -> None:
        super().__init__(message_serializer, timeout=timeout_seconds)
        self.timeout_seconds = timeout_seconds
        self.pool = pool

    async def send_bytes(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, bytes | str] | None = None,
        query_params: Mapping | None = None,
        timeout: int | None = None,
    ) -> tuple[bytes, aiohttp.ClientResponse]:
        sent = {CONTENT_TYPE_HEADER: "application/json", **(headers or {})}
        if settings.DAPR_API_TOKEN is not None:
            sent[DAPR_API_TOKEN_HEADER] = settings.DAPR_API_TOKEN
        request = {
            "method": method,
            "url": url,
            "data": data,
            "headers": sent,
            "sslcontext": self.get_ssl_context(),
            "params": query_params,
            "timeout": aiohttp.ClientTimeout(total=timeout or self.timeout_seconds),
        }
        resp = await self.retry_policy.make_http_call(self.pool.session, request)
        if 200 <= resp.status < 300:
            return await resp.read(), resp
        raise await self.convert_to_error(resp)


class SharedSessionActorClient(DaprActorHttpClient):
    """The SDK's actor client, its calls through the pool.

    The one override of SDK internals: DaprActorHttpClient keeps its HTTP client in `_client`
    and takes no other (dapr 1.14); tests/plumbing/test_connections.py fails if that changes.
    """

    def __init__(self, message_serializer: Any, timeout_seconds: int, pool: KeepAlivePool) -> None:
        super().__init__(message_serializer, timeout=timeout_seconds)
        self._client = SharedSessionHttpClient(message_serializer, timeout_seconds, pool)


class SharedSessionProxyFactory(ActorFactoryBase):
    """ActorProxy.create's `actor_proxy_factory`: proxies that call through one client."""

    def __init__(self, message_serializer: Any, timeout_seconds: int, pool: KeepAlivePool) -> None:
        self.client = SharedSessionActorClient(message_serializer, timeout_seconds, pool)
        self.message_serializer = message_serializer

    def create(
        self,
        actor_type: str,
        actor_id: ActorId,
        actor_interface: type[ActorInterface] | None = None,
    ) -> ActorProxy:
        return ActorProxy(
            self.client, actor_type, actor_id, actor_interface, self.message_serializer
        )


def shared_session_actors(
    client: DaprActorClientBase,
) -> Callable[[ActorRuntimeContext, ActorId], Actor]:
    """register_actor's `actor_factory`: each actor's state, timers and reminders use `client`."""
    contexts: dict[str, ActorRuntimeContext] = {}

    def create(ctx: ActorRuntimeContext, actor_id: ActorId) -> Actor:
        info = ctx.actor_type_info
        if info.type_name not in contexts:
            contexts[info.type_name] = ActorRuntimeContext(
                info, ctx.message_serializer, ctx.state_serializer, client
            )
        return info.implementation_type(contexts[info.type_name], actor_id)

    return create
