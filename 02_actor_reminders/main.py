# >>> feature: 02_actor_reminders
"""Step 02 - actor reminders: a durable one-shot reminder clears the history after inactivity.

Run: `uv run daprlab up 02_actor_reminders`, then open http://127.0.0.1:8000/docs
"""
# <<< feature

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Literal

from dapr.actor import Actor, ActorId, ActorInterface, ActorProxy, ActorRuntime, actormethod
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, field_validator

# The lab's plumbing, not the lesson: what each piece is for is in lab_plumbing/README.md.
from lab_plumbing import (
    EXACT_JSON,
    KeyHeader,
    Model,
    Sidecar,
    accepted,
    answered_once,
    app_logger,
    env_int,
    guard,
    keyed,
    state_store_errors,
)

# A step's own imports sit in its marked block below, apart from the sorted base imports.
# isort: split
# >>> feature: 02_actor_reminders
from datetime import UTC, datetime

from dapr.actor import Remindable

# <<< feature


# ---- settings ---------------------------------------------------------------------------------
logger = app_logger("chat_agent")
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
# daprd keeps due times to the second, so the API shows whole seconds too.
EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
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
        # No period: fired once, then deleted, on every release (SDK 1.14.1 sends it as null);
        # a zero period would repeat without end from Dapr 1.15 on.
        await self.register_reminder(REMINDER_NAME, expires_at.encode(), HISTORY_TTL, period=None)
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

    @answered_once(HISTORY_KEY)  # a retry (same Idempotency-Key) gets its reply, stores nothing
    async def process_message(self, message: dict) -> dict:
        # daprd's own actor API skips the route's checks: the same rules apply here.
        message = accepted(ChatMessage, message, "ProcessMessage")
        history = await self.get_conversation_history()
        reply = {"role": "assistant", "content": await compose_reply(self, history, message)}
        history = trim_history([*history, message, reply])  # the message with its key, if any
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


# ---- the app: actors registered with daprd, proxies to call them -----------------------------
sidecar = Sidecar(ACTOR_CALL_TIMEOUT_SECONDS)  # one keep-alive pool to daprd; 503s until it is up
model = Model(ACTOR_CALL_TIMEOUT_SECONDS)  # off (the echo) unless LLM_BASE_URL names a model


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    ActorRuntime.set_actor_config(RUNTIME_CONFIG)
    # daprd asks GET /dapr/config once, maybe before registration: advertise the types already.
    RUNTIME_CONFIG.update_entities([ACTOR_TYPE])
    async with sidecar.connected(register_actors):  # registers once daprd answers
        yield


async def register_actors() -> None:
    await dapr_actor.register_actor(
        ChatAgent,
        message_serializer=EXACT_JSON,
        state_serializer=EXACT_JSON,
        actor_factory=sidecar.actor_factory(),
    )
    logger.info("%s registered; sidecar at %s", ACTOR_TYPE, sidecar.url)


def chat_agent_proxy(actor_id: str) -> ActorProxy:
    return ActorProxy.create(
        ACTOR_TYPE, ActorId(actor_id), ChatAgentInterface, sidecar.proxy_factory()
    )


app = FastAPIOffline(title="ChatAgent", lifespan=lifespan)  # /docs served by the app itself
dapr_actor = DaprActor(app)
guard(app, ChatMessage)  # daprd's routes need the app token; exact 422s; /docs: the lab's API
# The actor id in a route's path, checked before any actor is called.
ActorIdParam = Annotated[
    str, PathParam(pattern=ACTOR_ID_PATTERN, description="letters, digits, - or _")
]


# ---- routes -----------------------------------------------------------------------------------
@app.post("/chat/{actor_id}", response_model=ChatReply)
async def chat(actor_id: ActorIdParam, message: ChatMessage, key: KeyHeader = None) -> ChatReply:
    agent = chat_agent_proxy(actor_id)
    reply = await sidecar.call_actor(agent, agent.ProcessMessage(keyed(message, key)))
    return ChatReply(actor_id=actor_id, reply=Message(**reply))


@app.get("/chat/{actor_id}/history", response_model=History)
async def history(actor_id: ActorIdParam) -> History:
    agent = chat_agent_proxy(actor_id)
    messages = await sidecar.call_actor(agent, agent.GetConversationHistory())
    return History(actor_id=actor_id, messages=[Message(**m) for m in messages])


# >>> feature: 02_actor_reminders
@app.get("/chat/{actor_id}/expiry", response_model=ExpiryStatus)
async def expiry(actor_id: ActorIdParam) -> ExpiryStatus:
    agent = chat_agent_proxy(actor_id)
    return ExpiryStatus(**await sidecar.call_actor(agent, agent.GetExpiry()))


@app.delete("/chat/{actor_id}/expiry", response_model=ExpiryStatus)
async def cancel_expiry(actor_id: ActorIdParam) -> ExpiryStatus:
    agent = chat_agent_proxy(actor_id)
    return ExpiryStatus(**await sidecar.call_actor(agent, agent.CancelExpiry()))


# <<< feature


# ---- the assistant ----------------------------------------------------------------------------
async def compose_reply(agent: Actor, history: list[dict[str, str]], message: dict) -> str:
    """The model's answer when LLM_BASE_URL is set (lab_plumbing/model.py); else an echo."""
    if model.enabled:  # called before any state changes: a failed call leaves the history as it was
        return await model.reply(agent, [*history, message])
    return f"You said: {message['content']}"


def trim_history(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Keep the newest HISTORY_MAX_PAIRS user/assistant pairs; never split a pair."""
    return messages[-2 * HISTORY_MAX_PAIRS :]
