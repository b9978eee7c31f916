# >>> feature: 03_actor_reentrancy
"""Step 03 - actor reentrancy: a call chain that comes back into the actor that started it.

ChatAgent asks FollowUpAgent for a follow-up; FollowUpAgent calls back into the same ChatAgent.
Run: `uv run daprlab up 03_actor_reentrancy`, then open http://127.0.0.1:8000/docs
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
# >>> feature: 03_actor_reentrancy
from dapr.actor.runtime.config import ActorReentrancyConfig, ActorTypeConfig
from dapr.clients import DaprInternalError

from lab_plumbing import env_flag, unwrap_actor_error

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

# >>> feature: 03_actor_reentrancy
FOLLOW_UP_ACTOR_TYPE = "FollowUpAgent"
# The one switch: "false" turns reentrancy off, and the follow-up call chain deadlocks.
REENTRANCY_ENABLED = env_flag("REENTRANCY_ENABLED", True)
# How often one call chain may be inside the same actor at once; one more entry is refused.
REENTRANCY_MAX_STACK_DEPTH = env_int("REENTRANCY_MAX_STACK_DEPTH", 32)
# What daprd is told for ChatAgent (the runtime config below): reentrancy, and how deep.
CHAT_AGENT_REENTRANCY = ActorReentrancyConfig(
    enabled=REENTRANCY_ENABLED, maxStackDepth=REENTRANCY_MAX_STACK_DEPTH
)
# Shorter than ACTOR_CALL_TIMEOUT_SECONDS: a deadlock is reported as one, not as a slow actor.
FOLLOW_UP_TIMEOUT_SECONDS = env_int("FOLLOW_UP_TIMEOUT_SECONDS", 5)
# Named so that ChatAgent's entitiesConfig entry can repeat them. 20 s, not SDK 1.14's 60 s:
# from Dapr 1.17.7 on, daprd cuts a drain timeout of 30 s or more to 24 s.
DRAIN_ONGOING_CALL_TIMEOUT = timedelta(seconds=20)
DRAIN_REBALANCED_ACTORS = True
# <<< feature


# ---- interface and actor ----------------------------------------------------------------------
class ChatAgentInterface(ActorInterface):
    @actormethod(name="ProcessMessage")
    async def process_message(self, message: dict) -> dict: ...

    @actormethod(name="GetConversationHistory")
    async def get_conversation_history(self) -> list: ...


# >>> feature: 03_actor_reentrancy
class FollowUpAgentInterface(ActorInterface):
    @actormethod(name="SuggestFollowUp")
    async def suggest_follow_up(self) -> str: ...


# <<< feature
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

    # >>> feature: 03_actor_reentrancy
    async def _ask_for_follow_up(self) -> str:
        """Ask FollowUpAgent, which calls back into this actor: one chain, two entries here."""
        proxies = sidecar.proxy_factory(FOLLOW_UP_TIMEOUT_SECONDS)  # fails fast on a deadlock
        agent = ActorProxy.create(FOLLOW_UP_ACTOR_TYPE, self.id, FollowUpAgentInterface, proxies)
        try:
            return await agent.SuggestFollowUp()
        except TimeoutError as err:
            me, other = f"{self.actor_type} {self.id.id}", f"{FOLLOW_UP_ACTOR_TYPE} {self.id.id}"
            if REENTRANCY_ENABLED:
                raise TimeoutError(f"{me} waited {FOLLOW_UP_TIMEOUT_SECONDS}s for {other}") from err
            logger.warning(
                "deadlock: %s %s waited %ds for %s %s, which waits to re-enter %s %s",
                self.actor_type, self.id.id, FOLLOW_UP_TIMEOUT_SECONDS,
                FOLLOW_UP_ACTOR_TYPE, self.id.id, self.actor_type, self.id.id,
            )  # fmt: skip
            raise TimeoutError(
                f"deadlock: {me} waited {FOLLOW_UP_TIMEOUT_SECONDS}s for {other}, which waits "
                f"to re-enter {me}; reentrancy is off (REENTRANCY_ENABLED=false)"
            ) from err
        except DaprInternalError as err:
            code, message = unwrap_actor_error(err)  # a new error: the SDK cannot encode `err`
            context = f"no follow-up from {FOLLOW_UP_ACTOR_TYPE} {self.id.id}"
            raise DaprInternalError(f"{context}: {message}", code) from err

    # <<< feature

    @answered_once(HISTORY_KEY)  # a retry (same Idempotency-Key) gets its reply, stores nothing
    async def process_message(self, message: dict) -> dict:
        # daprd's own actor API skips the route's checks: the same rules apply here.
        message = accepted(ChatMessage, message, "ProcessMessage")
        history = await self.get_conversation_history()
        # >>> feature: 03_actor_reentrancy
        follow_up = await self._ask_for_follow_up()
        # <<< feature
        reply = {"role": "assistant", "content": await compose_reply(self, history, message)}
        # >>> feature: 03_actor_reentrancy
        reply["content"] += f" (follow-up: {follow_up})"
        # <<< feature
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


# >>> feature: 03_actor_reentrancy
class FollowUpAgent(Actor, FollowUpAgentInterface):
    """Suggests a follow-up (never from the model); reads the conversation by calling back."""

    async def suggest_follow_up(self) -> str:
        try:
            history = await chat_agent_proxy(self.id.id).GetConversationHistory()
        except DaprInternalError as err:
            code, message = unwrap_actor_error(err)  # a new error: the SDK cannot encode `err`
            me, chat = f"{FOLLOW_UP_ACTOR_TYPE} {self.id.id}", f"{ACTOR_TYPE} {self.id.id}"
            raise DaprInternalError(
                f"{me} could not call back into {chat}: {message}", code
            ) from err
        logger.info(
            "%s %s called back into %s %s: %d messages",
            FOLLOW_UP_ACTOR_TYPE, self.id.id, ACTOR_TYPE, self.id.id, len(history),
        )  # fmt: skip
        return compose_follow_up(history)


def compose_follow_up(history: list[dict[str, str]]) -> str:
    earlier = [message["content"] for message in history if message["role"] == "user"]
    return f"earlier you said: {earlier[-1]}" if earlier else "this is your first message"


# <<< feature


# ---- runtime config ---------------------------------------------------------------------------
RUNTIME_CONFIG = ActorRuntimeConfig(
    actor_idle_timeout=ACTOR_IDLE_TIMEOUT,
    # >>> feature: 03_actor_reentrancy
    drain_ongoing_call_timeout=DRAIN_ONGOING_CALL_TIMEOUT,
    drain_rebalanced_actors=DRAIN_REBALANCED_ACTORS,
    actor_type_configs=[
        # Reentrancy only for ChatAgent: the one type that its FollowUpAgent calls back into.
        ActorTypeConfig(
            ACTOR_TYPE,
            # An entry inherits none of the values above (daprd would use its defaults): repeat.
            actor_idle_timeout=ACTOR_IDLE_TIMEOUT,
            drain_ongoing_call_timeout=DRAIN_ONGOING_CALL_TIMEOUT,
            drain_rebalanced_actors=DRAIN_REBALANCED_ACTORS,
            reentrancy=CHAT_AGENT_REENTRANCY,
        )
    ],
    # <<< feature
)
# >>> feature: 03_actor_reentrancy
# daprd asks GET /dapr/config once, maybe before registration: advertise FollowUpAgent already.
RUNTIME_CONFIG.update_entities([FOLLOW_UP_ACTOR_TYPE])
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


# >>> feature: 03_actor_reentrancy
class ReentrancySettings(BaseModel):
    actor_type: str
    enabled: bool
    max_stack_depth: int
    follow_up_timeout_seconds: int


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
    # >>> feature: 03_actor_reentrancy
    await dapr_actor.register_actor(
        FollowUpAgent,
        message_serializer=EXACT_JSON,
        state_serializer=EXACT_JSON,
        actor_factory=sidecar.actor_factory(),
    )
    logger.info(
        "reentrancy for %s is %s, maxStackDepth %d",
        ACTOR_TYPE, "on" if REENTRANCY_ENABLED else "off", REENTRANCY_MAX_STACK_DEPTH,
    )  # fmt: skip
    # <<< feature


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


# >>> feature: 03_actor_reentrancy
@app.get("/reentrancy", response_model=ReentrancySettings)
async def reentrancy() -> ReentrancySettings:
    """What this app tells daprd (GET /dapr/config) about reentrancy for ChatAgent."""
    return ReentrancySettings(
        actor_type=ACTOR_TYPE,
        enabled=REENTRANCY_ENABLED,
        max_stack_depth=REENTRANCY_MAX_STACK_DEPTH,
        follow_up_timeout_seconds=FOLLOW_UP_TIMEOUT_SECONDS,
    )


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
