# >>> feature: 01_actor_timers
"""Step 01 - actor timers: a bounded timer reports the conversation's size while it is active.

Run: `uv run daprlab up 01_actor_timers`, then open http://127.0.0.1:8000/docs
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
# >>> feature: 01_actor_timers
import asyncio
import math
import time

from lab_plumbing import SIDECAR_ERRORS

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

# >>> feature: 01_actor_timers
TIMER_NAME = "report-message-count"
TIMER_PERIOD = timedelta(seconds=env_int("TIMER_PERIOD_SECONDS", 5))
# The timer is bounded: without a TTL it would keep the actor from ever going idle.
TIMER_TTL = timedelta(seconds=env_int("TIMER_TTL_SECONDS", 60))
# Deactivation waits at most this long for daprd to stop the timer (it takes milliseconds).
TIMER_STOP_TIMEOUT_SECONDS = 2
# <<< feature


# ---- interface and actor ----------------------------------------------------------------------
class ChatAgentInterface(ActorInterface):
    @actormethod(name="ProcessMessage")
    async def process_message(self, message: dict) -> dict: ...

    @actormethod(name="GetConversationHistory")
    async def get_conversation_history(self) -> list: ...

    # >>> feature: 01_actor_timers
    @actormethod(name="GetTimerStatus")
    async def get_timer_status(self) -> dict: ...

    @actormethod(name="StopTimer")
    async def stop_timer(self) -> dict: ...

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
        # >>> feature: 01_actor_timers
        self._ticks = 0
        self._timer_ends_at = 0.0  # epoch seconds of the known timer's last tick; 0 = none known
        # <<< feature
        logger.info("%s %s activated", self.actor_type, self.id.id)

    async def _on_deactivate(self) -> None:
        # >>> feature: 01_actor_timers
        await self._stop_timer_on_deactivation()
        # <<< feature
        logger.info("%s %s deactivated", self.actor_type, self.id.id)

    # >>> feature: 01_actor_timers
    async def _start_timer(self) -> None:
        # The timer carries its own end: a restarted app that only receives its ticks learns it too.
        timer_data = {"ends_at": last_tick_time(time.time())}
        # Registering the same name again replaces the timer, so each message extends the TTL.
        await self.register_timer(
            TIMER_NAME, self.report_message_count, timer_data, TIMER_PERIOD, TIMER_PERIOD, TIMER_TTL
        )
        self._timer_ends_at = timer_data["ends_at"]

    async def report_message_count(self, timer_data: dict[str, float]) -> None:
        self._ticks += 1
        self._timer_ends_at = timer_data["ends_at"]
        count = len(await self.get_conversation_history())
        logger.info(
            "timer tick %d: %s %s has %d messages", self._ticks, self.actor_type, self.id.id, count
        )

    async def get_timer_status(self) -> dict:
        seconds_left = max(0, math.ceil(self._timer_ends_at - time.time()))
        return {
            "running": seconds_left > 0,
            "ticks_this_activation": self._ticks,
            "period_seconds": int(TIMER_PERIOD.total_seconds()),
            "seconds_left": seconds_left,
        }

    async def _stop_timer_on_deactivation(self) -> None:
        """Stop the timer with its activation, so that no tick comes after it on any release.

        Left running, runtime 1.14 drops it at its next tick, or ticks it into an activation
        that a call started before that tick; releases from 1.15 on re-activate the actor for it.
        """
        try:
            async with asyncio.timeout(TIMER_STOP_TIMEOUT_SECONDS):
                await self.unregister_timer(TIMER_NAME)
        except SIDECAR_ERRORS as err:
            reason = str(err) or f"no answer within {TIMER_STOP_TIMEOUT_SECONDS}s"
            # Deactivation goes on regardless: the timer then ends at its TTL at the latest.
            logger.warning(
                "timer not stopped on deactivation: %s %s: %s", self.actor_type, self.id.id, reason
            )
            return
        logger.info("timer stopped on deactivation: %s %s", self.actor_type, self.id.id)

    async def stop_timer(self) -> dict:
        await self.unregister_timer(TIMER_NAME)
        self._timer_ends_at = 0.0
        logger.info("timer stopped: %s %s", self.actor_type, self.id.id)
        return await self.get_timer_status()

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
        # >>> feature: 01_actor_timers
        await self._start_timer()
        # <<< feature
        return reply

    async def get_conversation_history(self) -> list:
        with state_store_errors():
            found, history = await self._state_manager.try_get_state(HISTORY_KEY)
        return list(history) if found else []


# >>> feature: 01_actor_timers
def last_tick_time(registered_at: float) -> float:
    """When (epoch seconds) a timer registered at `registered_at` ticks for the last time.

    daprd puts the first tick on a whole second, counts the TTL from that tick (not from the
    registration) and fires only before the TTL ends: TTL / PERIOD ticks, rounded up.
    """
    first_tick = math.floor(registered_at + TIMER_PERIOD.total_seconds())
    ticks = math.ceil(TIMER_TTL / TIMER_PERIOD)
    return first_tick + (ticks - 1) * TIMER_PERIOD.total_seconds()


# <<< feature


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


# >>> feature: 01_actor_timers
class TimerStatus(BaseModel):
    running: bool = Field(
        description="this activation registered the timer or received a tick from it, and the "
        "timer has ticks to come; a timer daprd kept from an earlier app process shows here "
        "from its next tick on"
    )
    ticks_this_activation: int = Field(description="ticks received since the actor was activated")
    period_seconds: int
    seconds_left: int = Field(description="until the timer's last tick; 0 when not running")


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


# >>> feature: 01_actor_timers
@app.get("/chat/{actor_id}/timer", response_model=TimerStatus)
async def timer_status(actor_id: ActorIdParam) -> TimerStatus:
    agent = chat_agent_proxy(actor_id)
    return TimerStatus(**await sidecar.call_actor(agent, agent.GetTimerStatus()))


@app.delete("/chat/{actor_id}/timer", response_model=TimerStatus)
async def stop_timer(actor_id: ActorIdParam) -> TimerStatus:
    agent = chat_agent_proxy(actor_id)
    return TimerStatus(**await sidecar.call_actor(agent, agent.StopTimer()))


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
