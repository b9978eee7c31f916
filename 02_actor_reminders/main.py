# >>> feature: 02_actor_reminders
"""Step 02 - actor reminders: a durable one-shot reminder clears the history after inactivity.

Run: `uv run daprlab up 02_actor_reminders`, then open http://127.0.0.1:8000/docs
"""
# <<< feature

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

import aiohttp
from dapr.actor import (
    Actor,
    ActorId,
    ActorInterface,
    ActorProxy,
    ActorProxyFactory,
    ActorRuntime,
    actormethod,
)
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.clients.exceptions import DaprInternalError
from dapr.conf import settings
from dapr.ext.fastapi import DaprActor
from dapr.serializers import DefaultJSONSerializer
from fastapi import FastAPI, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, field_validator

# A step's own imports sit in its marked block below, apart from the sorted base imports.
# isort: split
# >>> feature: 02_actor_reminders
from datetime import UTC, datetime

from dapr.actor import Remindable

# <<< feature


# ---- settings ---------------------------------------------------------------------------------
def env_int(name: str, default: int, minimum: int = 1) -> int:
    """A whole number from the environment; a bad value stops the app with a one-line reason."""
    raw = os.environ.get(name, str(default))
    if not raw.strip().isdecimal() or int(raw) < minimum:
        raise SystemExit(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
    return int(raw)


ACTOR_TYPE = "ChatAgent"
HISTORY_KEY = "history"
# History keeps this many user/assistant pairs; older pairs are dropped whole.
HISTORY_MAX_PAIRS = env_int("HISTORY_MAX_PAIRS", 10)
CONTENT_MAX_LENGTH = 4000
ACTOR_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Whole seconds only: the SDK's duration encoder mishandles fractions of a second.
ACTOR_IDLE_TIMEOUT = timedelta(seconds=env_int("ACTOR_IDLE_TIMEOUT_SECONDS", 3600))
# How long an HTTP request waits for the actor before answering 504.
ACTOR_CALL_TIMEOUT_SECONDS = env_int("ACTOR_CALL_TIMEOUT_SECONDS", 30)

# >>> feature: 02_actor_reminders
REMINDER_NAME = "clear-history"
EXPIRY_KEY = "history_expires_at"
# Each message moves the expiry this far into the future: the history's inactivity limit.
HISTORY_TTL = timedelta(seconds=env_int("HISTORY_TTL_SECONDS", 60))
# A zero period makes the reminder one-shot: daprd fires it once, then deletes it.
ONE_SHOT = timedelta(0)
# daprd keeps due times to the second, so the API shows whole seconds too.
EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# <<< feature


# ---- models -----------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    role: Literal["user"] = "user"
    content: str = Field(min_length=1, max_length=CONTENT_MAX_LENGTH)

    @field_validator("content")
    @classmethod
    def not_blank(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("content must not be blank")
        return content  # kept exactly as written: no stripping, no parsing


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class ChatReply(BaseModel):
    actor_id: str
    reply: Message


class History(BaseModel):
    actor_id: str
    messages: list[Message]


# >>> feature: 02_actor_reminders
class ExpiryStatus(BaseModel):
    armed: bool
    expires_at: str | None = Field(description="UTC time when the history is cleared")
    history_ttl_seconds: int


# <<< feature


# ---- interface and actor ----------------------------------------------------------------------
class ChatAgentInterface(ActorInterface):
    @actormethod(name="ProcessMessage")
    async def process_message(self, message: dict) -> dict: ...

    @actormethod(name="GetConversationHistory")
    async def get_conversation_history(self) -> list: ...

    # >>> feature: 02_actor_reminders
    @actormethod(name="GetExpiry")
    async def get_expiry(self) -> dict: ...

    @actormethod(name="CancelExpiry")
    async def cancel_expiry(self) -> dict: ...

    # <<< feature


class ChatAgent(
    Actor,
    ChatAgentInterface,
    # >>> feature: 02_actor_reminders
    # The SDK delivers reminders only to actors that list Remindable among their direct bases.
    Remindable,
    # <<< feature
):
    """One conversation per actor id; the history lives in the actor state store."""

    @property
    def actor_type(self) -> str:
        return self.runtime_ctx.actor_type_info.type_name

    async def _on_activate(self) -> None:
        logger.info("%s %s activated", self.actor_type, self.id.id)

    async def _on_deactivate(self) -> None:
        logger.info("%s %s deactivated", self.actor_type, self.id.id)

    # >>> feature: 02_actor_reminders
    async def _arm_expiry(self) -> None:
        expires_at = (datetime.now(UTC) + HISTORY_TTL).strftime(EXPIRY_FORMAT)
        # Re-registering a name replaces the reminder only if something in it changed
        # (runtime 1.14 skips an identical one): the data carries the new expiry, so it always does.
        await self.register_reminder(REMINDER_NAME, expires_at.encode(), HISTORY_TTL, ONE_SHOT)
        with state_store_errors():
            await self._state_manager.set_state(EXPIRY_KEY, expires_at)
            await self._state_manager.save_state()

    async def receive_reminder(
        self,
        name: str,
        state: bytes,
        # daprd's duration text ("0h1m0s0ms0μs"): the exact serializer leaves it unparsed.
        due_time: timedelta | str,
        period: timedelta | str,
        ttl: timedelta | str | None = None,
    ) -> None:
        with state_store_errors():
            found, expires_at = await self._state_manager.try_get_state(EXPIRY_KEY)
            if not found or (state or b"").decode() != expires_at:
                # A fire that lost the race against a newer message or a cancel: those win.
                logger.info("stale reminder %s ignored: %s %s", name, self.actor_type, self.id.id)
                return
            await self._state_manager.try_remove_state(HISTORY_KEY)
            await self._state_manager.try_remove_state(EXPIRY_KEY)
            await self._state_manager.save_state()
        logger.info("history expired: %s %s (reminder %s)", self.actor_type, self.id.id, name)

    async def get_expiry(self) -> dict:
        with state_store_errors():
            found, expires_at = await self._state_manager.try_get_state(EXPIRY_KEY)
        return {
            "armed": found,
            "expires_at": expires_at if found else None,
            "history_ttl_seconds": int(HISTORY_TTL.total_seconds()),
        }

    async def cancel_expiry(self) -> dict:
        await self.unregister_reminder(REMINDER_NAME)
        with state_store_errors():
            await self._state_manager.try_remove_state(EXPIRY_KEY)
            await self._state_manager.save_state()
        logger.info("expiry cancelled: %s %s keeps its history", self.actor_type, self.id.id)
        return await self.get_expiry()

    # <<< feature

    async def process_message(self, message: dict) -> dict:
        history = await self.get_conversation_history()
        reply = {"role": "assistant", "content": compose_reply(message["content"])}
        history = trim_history(
            [*history, {"role": message["role"], "content": message["content"]}, reply]
        )
        await self._state_manager.set_state(HISTORY_KEY, history)
        with state_store_errors():
            await self._state_manager.save_state()
        logger.info("%s %s recorded message %d", self.actor_type, self.id.id, len(history) - 1)
        # >>> feature: 02_actor_reminders
        await self._arm_expiry()
        # <<< feature
        return reply

    async def get_conversation_history(self) -> list:
        with state_store_errors():
            found, history = await self._state_manager.try_get_state(HISTORY_KEY)
        return list(history) if found else []


# ---- runtime config ---------------------------------------------------------------------------
RUNTIME_CONFIG = ActorRuntimeConfig(
    actor_idle_timeout=ACTOR_IDLE_TIMEOUT,
)


# ---- app and routes ---------------------------------------------------------------------------
@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    ActorRuntime.set_actor_config(RUNTIME_CONFIG)
    # daprd asks GET /dapr/config once, maybe before registration: advertise the types already.
    RUNTIME_CONFIG.update_entities([ACTOR_TYPE])
    if await sidecar_ready():
        await register_actors()
        yield
    else:
        waiting = asyncio.create_task(register_when_sidecar_is_up())
        yield
        waiting.cancel()


app = FastAPI(title="ChatAgent", lifespan=lifespan)
dapr_actor = DaprActor(app)
# The actor id in a route's path, checked before any actor is called.
ActorIdParam = Annotated[
    str, PathParam(pattern=ACTOR_ID_PATTERN, description="letters, digits, - or _")
]


@app.post("/chat/{actor_id}", response_model=ChatReply)
async def chat(actor_id: ActorIdParam, message: ChatMessage) -> ChatReply:
    agent = chat_agent_proxy(actor_id)
    reply = await call_actor(agent, agent.ProcessMessage(message.model_dump()))
    return ChatReply(actor_id=actor_id, reply=Message(**reply))


@app.get("/chat/{actor_id}/history", response_model=History)
async def history(actor_id: ActorIdParam) -> History:
    agent = chat_agent_proxy(actor_id)
    messages = await call_actor(agent, agent.GetConversationHistory())
    return History(actor_id=actor_id, messages=[Message(**m) for m in messages])


# >>> feature: 02_actor_reminders
@app.get("/chat/{actor_id}/expiry", response_model=ExpiryStatus)
async def expiry(actor_id: ActorIdParam) -> ExpiryStatus:
    agent = chat_agent_proxy(actor_id)
    return ExpiryStatus(**await call_actor(agent, agent.GetExpiry()))


@app.delete("/chat/{actor_id}/expiry", response_model=ExpiryStatus)
async def cancel_expiry(actor_id: ActorIdParam) -> ExpiryStatus:
    agent = chat_agent_proxy(actor_id)
    return ExpiryStatus(**await call_actor(agent, agent.CancelExpiry()))


# <<< feature


# ======= Not the lesson: below, the same plumbing in every step (a step's own lines marked) =======
logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(levelname)s:     %(message)s"
)
logger = logging.getLogger("chat_agent")


def compose_reply(content: str) -> str:
    """The assistant's answer: a deterministic echo. Plug a model in here."""
    return f"You said: {content}"


def trim_history(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Keep the newest HISTORY_MAX_PAIRS user/assistant pairs; never split a pair."""
    return messages[-2 * HISTORY_MAX_PAIRS :]


# ---- errors: each way an actor call fails, as a clear HTTP error -------------------------------
T = TypeVar("T")
ACTOR_ERROR_WRAPPING = "error from actor service: "  # daprd's prefix to a failed method's body


def unwrap_actor_error(err: DaprInternalError) -> tuple[str, str]:
    """(errorCode, message) of a failed actor or state call, without daprd's wrapping around it."""
    details = err.as_dict()
    message, code = details["message"] or "", details["errorCode"]
    _, wrapped, body = message.partition(ACTOR_ERROR_WRAPPING)
    if wrapped:
        try:
            inner = json.loads(body)
            message, code = inner["message"], inner["errorCode"]
        except (ValueError, KeyError, TypeError):
            pass  # not an error our actors sent: keep daprd's message as it is
    return code, message


@contextmanager
def state_store_errors() -> Iterator[None]:
    """Raise a failed state operation anew: the SDK cannot encode the raw bytes `err` carries (it
    would answer a bare "Internal Server Error"); still a DaprInternalError, so it drops changes."""
    try:
        yield
    except DaprInternalError as err:
        code, message = unwrap_actor_error(err)
        raise DaprInternalError(f"the actor state store failed: {message}", code) from err


async def call_actor(agent: ActorProxy, call: Awaitable[T]) -> T:
    """Await one call on `agent` and turn each way it can fail into a clear HTTP error."""
    who = f"{agent.actor_type} {agent.actor_id}"
    try:
        return await call
    except aiohttp.ClientConnectionError as err:
        raise HTTPException(
            503,
            f"Dapr sidecar not reachable at {SIDECAR_URL} ({err}): is daprd running? "
            "`uv run daprlab up <step>` starts it with the app",
        ) from err
    except TimeoutError as err:
        waited = f"{who} did not answer within {ACTOR_CALL_TIMEOUT_SECONDS}s"
        status = await placement_status()
        if status != "placement: connected":
            # Without placement, daprd holds actor calls until it is back.
            raise HTTPException(
                503, f"{waited}: the sidecar reports '{status}': is the placement service running?"
            ) from err
        raise HTTPException(504, waited) from err
    except DaprInternalError as err:
        code, message = unwrap_actor_error(err)
        if "did not find address for actor" in message:
            raise HTTPException(
                503,
                f"no host for {who}: is the placement service running and "
                f"the actor state store configured? ({message})",
            ) from err
        raise HTTPException(500, f"{who} failed: {code}: {message}") from err


SIDECAR_URL = f"http://{settings.DAPR_RUNTIME_HOST}:{settings.DAPR_HTTP_PORT}"
SIDECAR_CHECK_TIMEOUT_SECONDS = 1


async def sidecar_ready() -> bool:
    """True once daprd answers; the SDK's own wait would block the event loop instead."""
    try:
        async with aiohttp.ClientSession() as session:
            timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
            async with session.get(f"{SIDECAR_URL}/v1.0/healthz/outbound", timeout=timeout) as resp:
                return resp.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False


async def placement_status() -> str:
    """The sidecar's word on its placement connection ("placement: connected" when all is well)."""
    try:
        async with aiohttp.ClientSession() as session:
            timeout = aiohttp.ClientTimeout(total=SIDECAR_CHECK_TIMEOUT_SECONDS)
            async with session.get(f"{SIDECAR_URL}/v1.0/metadata", timeout=timeout) as resp:
                metadata = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return "no answer from the sidecar"
    return str(metadata.get("actorRuntime", {}).get("placement", "unknown"))


# ---- registration: host the actors once the sidecar answers ------------------------------------
class ExactJSONSerializer(DefaultJSONSerializer):
    """Decodes JSON as plain JSON: the SDK's default decoder turns text that looks like a duration
    ("5s") or a date into timedelta/datetime objects (or fails on it); a chat keeps the text."""

    def deserialize(
        self,
        data: bytes,
        data_type: type | None = object,
        custom_hook: Callable[[Any], Any] | None = None,
    ) -> Any:
        obj = json.loads(data)
        return custom_hook(obj) if callable(custom_hook) else obj


SERIALIZER = ExactJSONSerializer()
# Made at registration: the SDK's HTTP client blocks until the sidecar answers.
proxy_factories: dict[str, ActorProxyFactory] = {}
actors_registered = asyncio.Event()


def proxy_factory() -> ActorProxyFactory:
    """Where actor proxies come from; 503 with the fix until the actors are registered."""
    if not actors_registered.is_set():
        raise HTTPException(
            503,
            f"no Dapr sidecar at {SIDECAR_URL}: start the app with its sidecar "
            "(`uv run daprlab up <step>`)",
        )
    return proxy_factories["default"]


def chat_agent_proxy(actor_id: str) -> ActorProxy:
    return ActorProxy.create(ACTOR_TYPE, ActorId(actor_id), ChatAgentInterface, proxy_factory())


async def register_actors() -> None:
    await dapr_actor.register_actor(
        ChatAgent, message_serializer=SERIALIZER, state_serializer=SERIALIZER
    )
    proxy_factories["default"] = ActorProxyFactory(
        message_serializer=SERIALIZER, http_timeout_seconds=ACTOR_CALL_TIMEOUT_SECONDS
    )
    logger.info("%s registered; sidecar at %s", ACTOR_TYPE, SIDECAR_URL)
    actors_registered.set()


async def register_when_sidecar_is_up() -> None:
    logger.warning(
        "no Dapr sidecar at %s yet: /chat answers 503 until one is up. "
        "Start the app with its sidecar: `uv run daprlab up <step>`",
        SIDECAR_URL,
    )
    while not await sidecar_ready():
        await asyncio.sleep(SIDECAR_CHECK_TIMEOUT_SECONDS)
    await register_actors()
