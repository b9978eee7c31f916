"""One app's connection to its Dapr sidecar: registration once daprd answers, actor clients that
keep their connections, and each way an actor call fails as an HTTP error that names the fix."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from typing import Any, TypeVar

import aiohttp
from dapr.actor import Actor, ActorId, ActorProxy, ActorProxyFactory
from dapr.actor.client.proxy import ActorFactoryBase
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.clients import DaprInternalError
from dapr.conf import settings
from fastapi import HTTPException

from lab_plumbing.connections import (
    KeepAlivePool,
    SharedSessionActorClient,
    SharedSessionProxyFactory,
    shared_session_actors,
)
from lab_plumbing.errors import MODEL_ERROR_STATUSES, error_answer, unwrap_actor_error
from lab_plumbing.idempotency import KEY_REUSED, reused_key_detail
from lab_plumbing.serializer import EXACT_JSON
from lab_plumbing.settings import env_choice

logger = logging.getLogger(__name__)
T = TypeVar("T")
SIDECAR_CHECK_TIMEOUT_SECONDS = 1
# The benchmark's switch: "per-call" leaves the SDK's own clients in place (a new aiohttp session,
# so a new TCP connection, per call to daprd), to measure what the keep-alive pool is worth.
CONNECTIONS_SETTING = "SIDECAR_CONNECTIONS"
SHARED, PER_CALL = "shared", "per-call"
START_HINT = "`uv run daprlab up <step>`"


class MetadataUnreadable(Exception):
    """GET /v1.0/metadata failed: no connection, no answer in time, an error page or not JSON."""


class Sidecar:
    """What one app knows of its daprd: where it is, whether the actors are registered, and the
    clients that call it. main.py makes one per app; nothing is shared between apps."""

    def __init__(self, call_timeout_seconds: int) -> None:
        self.url = f"http://{settings.DAPR_RUNTIME_HOST}:{settings.DAPR_HTTP_PORT}"
        # How long an actor call from a route waits before answering 504.
        self.call_timeout_seconds = call_timeout_seconds
        self.connections = env_choice(CONNECTIONS_SETTING, SHARED, (SHARED, PER_CALL))
        self.registered = asyncio.Event()
        self._pool = KeepAlivePool()
        self._actor_factory: Callable[[ActorRuntimeContext, ActorId], Actor] | None = None
        # By timeout; made once the sidecar answers: the SDK's HTTP client blocks until it does.
        self._proxy_factories: dict[int, ActorFactoryBase] = {}

    # ---- registration: host the actors once the sidecar answers ------------------------------
    @asynccontextmanager
    async def connected(self, register: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """For the app's lifespan: the keep-alive pool open, and `register` run once daprd
        answers (at once, or in the background while the app serves 503s)."""
        async with self._pool.open() if self.connections == SHARED else nullcontext():
            if await self.ready():
                await self._register(register)
                yield
            else:
                waiting = asyncio.create_task(self._register_when_up(register))
                try:
                    yield
                finally:
                    waiting.cancel()

    async def _register(self, register: Callable[[], Awaitable[None]]) -> None:
        await register()
        timeout = self.call_timeout_seconds
        self._proxy_factories[timeout] = self._new_proxy_factory(timeout)
        self.registered.set()

    async def _register_when_up(self, register: Callable[[], Awaitable[None]]) -> None:
        logger.warning(
            "no Dapr sidecar at %s yet: /chat answers 503 until one is up. "
            "Start the app with its sidecar: `uv run daprlab up <step>`",
            self.url,
        )
        while not await self.ready():
            await asyncio.sleep(SIDECAR_CHECK_TIMEOUT_SECONDS)
        await self._register(register)

    def actor_factory(self) -> Callable[[ActorRuntimeContext, ActorId], Actor] | None:
        """register_actor's `actor_factory`: actors whose state, timers and reminders calls go
        through the pool; None (the SDK's own) with SIDECAR_CONNECTIONS=per-call."""
        if self.connections == PER_CALL:
            return None
        if self._actor_factory is None:
            client = SharedSessionActorClient(
                EXACT_JSON, settings.DAPR_HTTP_TIMEOUT_SECONDS, self._pool
            )
            self._actor_factory = shared_session_actors(client)
        return self._actor_factory

    def proxy_factory(self, timeout_seconds: int | None = None) -> ActorFactoryBase:
        """ActorProxy.create's factory, for calls that wait `timeout_seconds` (by default the call
        timeout); 503 with the fix until the actors are registered."""
        if not self.registered.is_set():
            raise error_answer(
                503,
                f"no Dapr sidecar at {self.url}: start the app with its sidecar ({START_HINT})",
            )
        timeout = timeout_seconds or self.call_timeout_seconds
        if timeout not in self._proxy_factories:
            self._proxy_factories[timeout] = self._new_proxy_factory(timeout)
        return self._proxy_factories[timeout]

    def _new_proxy_factory(self, timeout_seconds: int) -> ActorFactoryBase:
        if self.connections == PER_CALL:
            return ActorProxyFactory(EXACT_JSON, timeout_seconds)
        return SharedSessionProxyFactory(EXACT_JSON, timeout_seconds, self._pool)

    # ---- what the sidecar says about itself --------------------------------------------------
    async def ready(self) -> bool:
        """True once daprd answers; the SDK's own wait would block the event loop instead."""
        try:
            async with aiohttp.ClientSession() as session:
                timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
                url = f"{self.url}/v1.0/healthz/outbound"
                async with session.get(url, timeout=timeout) as resp:
                    return resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def metadata(self) -> dict[str, Any]:
        """The sidecar's GET /v1.0/metadata; MetadataUnreadable says why there is none."""
        url = f"{self.url}/v1.0/metadata"
        problem = f"cannot read the Dapr sidecar's metadata at {url}"
        try:
            async with aiohttp.ClientSession() as session:
                timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
                async with session.get(url, timeout=timeout) as resp:
                    resp.raise_for_status()  # an error page must not read as empty metadata
                    return await resp.json()
        except TimeoutError as err:
            reason = f"no answer within {SIDECAR_CHECK_TIMEOUT_SECONDS}s"
            raise MetadataUnreadable(f"{problem} ({reason})") from err
        except (aiohttp.ClientError, ValueError) as err:
            raise MetadataUnreadable(f"{problem} ({err})") from err

    async def placement_status(self) -> str:
        """The sidecar's word on its placement connection ("placement: connected" when all is
        well)."""
        try:
            metadata = await self.metadata()
        except MetadataUnreadable:
            return "no answer from the sidecar"
        return str(metadata.get("actorRuntime", {}).get("placement", "unknown"))

    # ---- errors: each way an actor call fails, as a clear HTTP error -------------------------
    async def call_actor(self, agent: ActorProxy, call: Awaitable[T]) -> T:
        """Await one call on `agent` and turn each way it can fail into a clear HTTP error."""
        who = f"{agent.actor_type} {agent.actor_id}"
        try:
            return await call
        except aiohttp.ClientConnectionError as err:
            raise error_answer(
                503,
                f"Dapr sidecar not reachable at {self.url} ({err}): is daprd running? "
                f"{START_HINT} starts it with the app",
            ) from err
        except TimeoutError as err:
            waited = f"{who} did not answer within {self.call_timeout_seconds}s"
            status = await self.placement_status()
            if status != "placement: connected":
                # Without placement, daprd holds actor calls until it is back.
                raise error_answer(
                    503,
                    f"{waited}: the sidecar reports '{status}': is the placement service running?",
                ) from err
            raise error_answer(504, waited) from err
        except DaprInternalError as err:
            raise actor_error_answer(who, err) from err


def actor_error_answer(who: str, err: DaprInternalError) -> HTTPException:
    """The answer to an actor call that daprd reports failed."""
    code, message = unwrap_actor_error(err)
    if code == KEY_REUSED:  # the caller's mistake, in the shape of the API's other 422s
        return error_answer(422, reused_key_detail(message))
    model_status = dict(MODEL_ERROR_STATUSES).get(code)
    if model_status is not None:  # the message names the actor and the model already
        return error_answer(model_status, message)
    if message.startswith("TimeoutError("):
        # The actor itself gave up waiting (on another actor, say): a timeout, not a failure.
        return error_answer(504, f"{who} timed out: {message}")
    if "did not find address for actor" in message:
        return error_answer(
            503,
            f"no host for {who}: is the placement service running and "
            f"the actor state store configured? ({message})",
        )
    return error_answer(500, f"{who} failed: {code}: {message}")
