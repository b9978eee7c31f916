# >>> feature: 04_runtime_config
"""Step 04 - runtime configuration: every actor runtime knob from the environment.

Run: `uv run daprlab up 04_runtime_config`, then open http://127.0.0.1:8000/docs
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
# >>> feature: 04_runtime_config
from dapr.actor.runtime.config import ActorReentrancyConfig, ActorTypeConfig
from fastapi import HTTPException

from lab_plumbing import MetadataUnreadable, env_flag

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

# >>> feature: 04_runtime_config
# Every other knob of the actor runtime, from the environment, with the runtime's defaults but one.
ACTOR_SCAN_INTERVAL = timedelta(seconds=env_int("ACTOR_SCAN_INTERVAL_SECONDS", 30))
DRAIN_ONGOING_CALL_TIMEOUT = timedelta(seconds=env_int("DRAIN_ONGOING_CALL_TIMEOUT_SECONDS", 20))
DRAIN_REBALANCED_ACTORS = env_flag("DRAIN_REBALANCED_ACTORS", True)
REENTRANCY_ENABLED = env_flag("REENTRANCY_ENABLED", False)
REENTRANCY_MAX_STACK_DEPTH = env_int("REENTRANCY_MAX_STACK_DEPTH", 32)
REMINDERS_STORAGE_PARTITIONS = env_int("REMINDERS_STORAGE_PARTITIONS", 0, minimum=0)
# A second actor type with settings of its own (entitiesConfig), to compare with ChatAgent.
QUICK_ACTOR_TYPE = "QuickChatAgent"
QUICK_IDLE_TIMEOUT = timedelta(seconds=env_int("QUICK_IDLE_TIMEOUT_SECONDS", 10))
# <<< feature


# ---- interface and actor ----------------------------------------------------------------------
class ChatAgentInterface(ActorInterface):
    @actormethod(name="ProcessMessage")
    async def process_message(self, message: dict) -> dict: ...

    @actormethod(name="GetConversationHistory")
    async def get_conversation_history(self) -> list: ...


class ChatAgent(
    Actor,
    ChatAgentInterface,
):
    """One conversation per actor id; the history lives in the actor state store."""

    @property
    def actor_type(self) -> str:
        return self.runtime_ctx.actor_type_info.type_name

    async def _on_activate(self) -> None:
        logger.info("%s %s activated", self.actor_type, self.id.id)

    async def _on_deactivate(self) -> None:
        logger.info("%s %s deactivated", self.actor_type, self.id.id)

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
        return reply

    async def get_conversation_history(self) -> list:
        with state_store_errors():
            found, history = await self._state_manager.try_get_state(HISTORY_KEY)
        return list(history) if found else []


# >>> feature: 04_runtime_config
class QuickChatAgent(ChatAgent):
    """The same agent under its own actor type, so entitiesConfig can give it its own settings."""


# <<< feature


# ---- runtime config ---------------------------------------------------------------------------
RUNTIME_CONFIG = ActorRuntimeConfig(
    actor_idle_timeout=ACTOR_IDLE_TIMEOUT,
    # >>> feature: 04_runtime_config
    actor_scan_interval=ACTOR_SCAN_INTERVAL,
    # 20 s by default, not the runtime's 60 s: from Dapr 1.17.7 on, 30 s or more is cut to 24 s.
    drain_ongoing_call_timeout=DRAIN_ONGOING_CALL_TIMEOUT,
    drain_rebalanced_actors=DRAIN_REBALANCED_ACTORS,
    reentrancy=ActorReentrancyConfig(
        enabled=REENTRANCY_ENABLED, maxStackDepth=REENTRANCY_MAX_STACK_DEPTH
    ),
    reminders_storage_partitions=REMINDERS_STORAGE_PARTITIONS,
    actor_type_configs=[
        # An entry does not inherit the global values: each one left out gets the runtime default.
        # Reentrancy and reminder partitions are left out on purpose: the tests show they stay off.
        ActorTypeConfig(
            QUICK_ACTOR_TYPE,
            actor_idle_timeout=QUICK_IDLE_TIMEOUT,
            drain_ongoing_call_timeout=DRAIN_ONGOING_CALL_TIMEOUT,
            drain_rebalanced_actors=DRAIN_REBALANCED_ACTORS,
        )
    ],
    # <<< feature
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
    # >>> feature: 04_runtime_config
    await dapr_actor.register_actor(
        QuickChatAgent,
        message_serializer=EXACT_JSON,
        state_serializer=EXACT_JSON,
        actor_factory=sidecar.actor_factory(),
    )
    # <<< feature


def chat_agent_proxy(actor_id: str) -> ActorProxy:
    return ActorProxy.create(
        ACTOR_TYPE, ActorId(actor_id), ChatAgentInterface, sidecar.proxy_factory()
    )


# >>> feature: 04_runtime_config
def quick_chat_agent_proxy(actor_id: str) -> ActorProxy:
    return ActorProxy.create(
        QUICK_ACTOR_TYPE, ActorId(actor_id), ChatAgentInterface, sidecar.proxy_factory()
    )


# <<< feature


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


# >>> feature: 04_runtime_config
@app.post("/quick-chat/{actor_id}", response_model=ChatReply)
async def quick_chat(
    actor_id: ActorIdParam, message: ChatMessage, key: KeyHeader = None
) -> ChatReply:
    agent = quick_chat_agent_proxy(actor_id)
    reply = await sidecar.call_actor(agent, agent.ProcessMessage(keyed(message, key)))
    return ChatReply(actor_id=actor_id, reply=Message(**reply))


@app.get("/quick-chat/{actor_id}/history", response_model=History)
async def quick_history(actor_id: ActorIdParam) -> History:
    agent = quick_chat_agent_proxy(actor_id)
    messages = await sidecar.call_actor(agent, agent.GetConversationHistory())
    return History(actor_id=actor_id, messages=[Message(**m) for m in messages])


@app.get("/runtime/actors")
async def active_actors() -> dict[str, int]:
    """Active actors per type, as the sidecar counts them (GET /v1.0/metadata)."""
    try:
        metadata = await sidecar.metadata()
    except MetadataUnreadable as err:  # an error page must not read as "no active actors"
        fix = "is daprd running? `uv run daprlab up 04_runtime_config` starts it with the app"
        raise HTTPException(503, f"{err}: {fix}") from err
    counts = {actor_type: 0 for actor_type in (ACTOR_TYPE, QUICK_ACTOR_TYPE)}
    for entry in metadata.get("actorRuntime", {}).get("activeActors", []):
        counts[entry["type"]] = int(entry.get("count", 0))  # a zero count is left out
    return counts


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
