"""The agent's model: an OpenAI-compatible chat completions endpoint behind `compose_reply`, off
unless LLM_BASE_URL is set, and the actor rules for calling it.

- The model's timeout sits below the actor call timeout (checked at start): a slower call would
  turn into a 504 whose reply still lands in the history.
- A call that fails or times out raises ModelFailed (502) or ModelTimedOut (504), both naming the
  model; the caller calls the model before it changes any state, so the history stays as it was.
- Each actor has a budget (calls and tokens per hour) kept in its own state, under BUDGET_KEY:
  once spent, ModelBudgetSpent (429) says when it resets. It is saved with the history, by the
  caller's save_state, so a failed call costs nothing.
- The API key goes to the client and nowhere else: never logged, never in an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dapr.actor import Actor
from dapr.clients import DaprInternalError

from lab_plumbing.errors import (
    ERR_MODEL_BUDGET,
    ERR_MODEL_FAILED,
    ERR_MODEL_TIMEOUT,
    state_store_errors,
)
from lab_plumbing.settings import env_int

if TYPE_CHECKING:
    from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

BASE_URL_SETTING = "LLM_BASE_URL"
MODEL_SETTING = "LLM_MODEL"
API_KEY_SETTING = "LLM_API_KEY"
TIMEOUT_SETTING = "LLM_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 20
CALLS_PER_HOUR_SETTING = "LLM_CALLS_PER_HOUR"
DEFAULT_CALLS_PER_HOUR = 60
TOKENS_PER_HOUR_SETTING = "LLM_TOKENS_PER_HOUR"
DEFAULT_TOKENS_PER_HOUR = 50_000
MAX_REPLY_TOKENS_SETTING = "LLM_MAX_REPLY_TOKENS"
DEFAULT_MAX_REPLY_TOKENS = 256
# A local server (llama.cpp, Ollama) takes any key; the client wants one all the same.
NO_KEY = "unused"
BUDGET_KEY = "model_budget"
BUDGET_WINDOW_SECONDS = 3600
RESET_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
SYSTEM_PROMPT = "You are a helpful assistant. Answer in a few sentences."
HIDDEN = "***"
RETRIES = 1
HTTP_LOGGER = "httpx2"  # the openai client's HTTP library


class ModelFailed(DaprInternalError):
    """The model answered with an error, no text, or not at all (502)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ERR_MODEL_FAILED)


class ModelTimedOut(DaprInternalError):
    """No answer from the model within LLM_TIMEOUT_SECONDS (504)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ERR_MODEL_TIMEOUT)


class ModelBudgetSpent(DaprInternalError):
    """The actor spent its calls or tokens for this hour (429, with the reset time)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ERR_MODEL_BUDGET)


@dataclass
class Budget:
    """One actor's use of the model in the current hour, as kept in its state."""

    window_started_at: float
    calls: int = 0
    tokens: int = 0

    @classmethod
    def current(cls, stored: dict[str, Any] | None, now: float) -> Budget:
        """The stored budget, or a new one when there is none or its hour is over."""
        if stored is None or now >= stored["window_started_at"] + BUDGET_WINDOW_SECONDS:
            return cls(now)
        return cls(stored["window_started_at"], stored["calls"], stored["tokens"])

    @property
    def resets_at(self) -> str:
        reset = datetime.fromtimestamp(self.window_started_at + BUDGET_WINDOW_SECONDS, UTC)
        return reset.strftime(RESET_FORMAT)


@dataclass
class Reply:
    text: str
    tokens_in: int
    tokens_out: int
    seconds: float


class Model:
    """The model one app talks to; main.py makes one. `enabled` is False without LLM_BASE_URL,
    and then nothing here is read or imported (the openai client neither)."""

    def __init__(self, call_timeout_seconds: int) -> None:
        self.base_url = os.environ.get(BASE_URL_SETTING, "").strip()
        self.enabled = bool(self.base_url)
        self.name = os.environ.get(MODEL_SETTING, "").strip()
        self.timeout_seconds = env_int(TIMEOUT_SETTING, DEFAULT_TIMEOUT_SECONDS)
        self.calls_per_hour = env_int(CALLS_PER_HOUR_SETTING, DEFAULT_CALLS_PER_HOUR)
        self.tokens_per_hour = env_int(TOKENS_PER_HOUR_SETTING, DEFAULT_TOKENS_PER_HOUR)
        self.max_reply_tokens = env_int(MAX_REPLY_TOKENS_SETTING, DEFAULT_MAX_REPLY_TOKENS)
        self._client: AsyncOpenAI | None = None
        self._key = ""
        if not self.enabled:
            return
        if not self.name:
            raise SystemExit(f"{MODEL_SETTING} must name the model {BASE_URL_SETTING} serves")
        if self.timeout_seconds >= call_timeout_seconds:
            raise SystemExit(
                f"{TIMEOUT_SETTING} ({self.timeout_seconds}) must be below "
                f"ACTOR_CALL_TIMEOUT_SECONDS ({call_timeout_seconds}): a slower model call would "
                "answer 504 while its reply still lands in the history"
            )
        from openai import AsyncOpenAI  # only with a model: its import takes a while

        self._key = os.environ.get(API_KEY_SETTING, "")
        # One retry, for a kept-alive connection that the server closed as the request went out;
        # the whole call, retry included, stays within the timeout (see _ask).
        self._client = AsyncOpenAI(
            api_key=self._key or NO_KEY,
            base_url=self.base_url,
            timeout=self.timeout_seconds,
            max_retries=RETRIES,
        )
        # The client's HTTP library logs each request: "model call: ..." says it, with more.
        logging.getLogger(HTTP_LOGGER).setLevel(logging.WARNING)

    def __repr__(self) -> str:  # the key stays out of any repr, traceback or debugger
        state = f"{self.name} at {self.base_url}" if self.enabled else "off"
        return f"Model({state})"

    def _hide_key(self, text: str) -> str:
        return text.replace(self._key, HIDDEN) if self._key else text

    async def reply(self, agent: Actor, conversation: list[dict[str, str]]) -> str:
        """The model's answer to `conversation` (the history and the new message), for `agent`.

        Checks the agent's budget first and records the call in it (set, not saved: the caller's
        save_state stores it with the history). Raises ModelBudgetSpent, ModelFailed or
        ModelTimedOut; in each case no state is changed.
        """
        who = f"{agent.runtime_ctx.actor_type_info.type_name} {agent.id.id}"
        states = agent._state_manager  # the SDK's state API for an actor, as main.py uses it
        now = time.time()
        with state_store_errors():
            found, stored = await states.try_get_state(BUDGET_KEY)
        budget = Budget.current(stored if found else None, now)
        self._check(who, budget)
        answer = await self._ask(who, conversation)
        budget.calls += 1
        budget.tokens += answer.tokens_in + answer.tokens_out
        await states.set_state(BUDGET_KEY, vars(budget))
        actor_type, actor_id = who.split(" ")
        logger.info(
            "model call: %s %s: %s answered in %d ms, %d tokens (%d in, %d out)",
            actor_type, actor_id, self.name, round(answer.seconds * 1000),
            answer.tokens_in + answer.tokens_out, answer.tokens_in, answer.tokens_out,
        )  # fmt: skip
        return answer.text

    def _check(self, who: str, budget: Budget) -> None:
        spent = None
        if budget.calls >= self.calls_per_hour:
            spent = f"{self.calls_per_hour} calls per hour"
        elif budget.tokens >= self.tokens_per_hour:
            spent = f"{self.tokens_per_hour} tokens per hour"
        if spent is not None:
            raise ModelBudgetSpent(
                f"{who} has spent its model budget ({spent}): it resets at {budget.resets_at}"
            )

    async def _ask(self, who: str, conversation: list[dict[str, str]]) -> Reply:
        from openai import APIConnectionError, APIError, APITimeoutError  # loaded already

        assert self._client is not None, "the model is off: LLM_BASE_URL is not set"
        # Role and content only: a stored message may carry more (an idempotency key, say).
        said = [{"role": m["role"], "content": m["content"]} for m in conversation]
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, *said]
        started = time.perf_counter()
        try:
            # The client's timeout is per read; this one bounds the whole call.
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._client.chat.completions.create(
                    model=self.name,
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=self.max_reply_tokens,
                )
        except (TimeoutError, APITimeoutError) as err:
            reason = f"no answer within {TIMEOUT_SETTING}={self.timeout_seconds}s"
            raise self._failure(who, reason, ModelTimedOut) from err
        except APIConnectionError as err:
            reason = f"not reachable ({err}): is the model server running?"
            raise self._failure(who, reason, ModelFailed) from err
        except APIError as err:
            raise self._failure(who, self._hide_key(str(err)), ModelFailed) from err
        seconds = time.perf_counter() - started
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None else None
        if not text or not text.strip():
            raise self._failure(who, "it answered with no text", ModelFailed)
        usage = response.usage
        tokens_in = usage.prompt_tokens if usage else 0
        tokens_out = usage.completion_tokens if usage else 0
        return Reply(text.strip(), tokens_in, tokens_out, seconds)

    def _failure(
        self, who: str, reason: str, kind: type[ModelFailed | ModelTimedOut]
    ) -> DaprInternalError:
        actor_type, actor_id = who.split(" ")
        logger.warning("model call failed: %s %s: %s: %s", actor_type, actor_id, self.name, reason)
        verb = "timed out" if kind is ModelTimedOut else "failed"
        return kind(
            f"{who}: the model {self.name} at {self.base_url} {verb}: {reason}; "
            "the history is unchanged"
        )
