"""The agent with a real model: llama.cpp's OpenAI-compatible server and SmolLM2-135M-Instruct
(the `model` extra), behind the real daprd, placement, scheduler and Redis.

Each actor rule for a model call, proven: a reply that is the model's, one call at a time per
actor (and calls of two actors side by side), a stopped model (502) and a slow one (504) that
leave the history as it was, the per-actor budget (429 with the reset time), the model's timeout
below the actor call's (tests/model/test_model_settings.py), and the API key that never leaves
the app's client.

The model is made slow by freezing its server (SIGSTOP) for a known time, as
`daprlab fault pause model` does.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from daprlab import loglines, model_server
from daprlab.harness import RunningStack
from daprlab.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("local_model")]
STEP = "04_runtime_config"
MODEL = model_server.MODEL_ALIAS
TIMEOUT_SECONDS = 15
CALLS_PER_HOUR = 3
# A key the app must keep to itself: it goes to the model server, nowhere else.
API_KEY = "sk-lab-test-7f3a9c2e5b8d41f6a0c3e9b7d2f5a8c1"
APP_ENV = {
    "LLM_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    "LLM_CALLS_PER_HOUR": str(CALLS_PER_HOUR),
    "LLM_MAX_REPLY_TOKENS": "32",
    "LLM_API_KEY": API_KEY,
}
# How long the server is frozen while two messages wait: long against a reply (tenths of a
# second) and against Dapr's hops, short against TIMEOUT_SECONDS.
FREEZE_SECONDS = 3.0
# A log line reaches the test a little after the app wrote it.
LOG_SLACK_SECONDS = 0.5
LOG_TIMEOUT_SECONDS = 30
RESET = re.compile(r"resets at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")


@dataclass
class Call:
    """One model call from the app's log: when it started and ended (monotonic seconds)."""

    start: float
    end: float
    line: re.Match[str]

    @property
    def seconds(self) -> float:
        return int(self.line["ms"]) / 1000


@pytest.fixture(scope="module")
def arrivals() -> list[tuple[float, str]]:
    """Every app line with the moment it arrived: a call ended then, and began its time before."""
    return []


@pytest.fixture(scope="module")
def stack(module_lab, arrivals: list[tuple[float, str]]) -> RunningStack:
    def note(process: str, line: str) -> None:
        if process == "app":
            arrivals.append((time.monotonic(), line))

    return module_lab(STEP, app_env=APP_ENV, model=True, line_sink=note)


def timed_calls(arrivals: list[tuple[float, str]], actor_id: str, count: int) -> list[Call]:
    """The first `count` model calls of one actor, waited for, with their start and end."""

    def found() -> list[Call] | None:
        calls = []
        for at, line in list(arrivals):
            call = loglines.app_message("model call", line)
            if call is not None and call["id"] == actor_id:
                calls.append(Call(at - int(call["ms"]) / 1000, at, call))
        return calls[:count] if len(calls) >= count else None

    return wait_for(found, LOG_TIMEOUT_SECONDS, f"{count} model calls of {actor_id}")


def chat(stack: RunningStack, actor_id: str, content: str) -> httpx.Response:
    return stack.app.post(f"/chat/{actor_id}", json={"content": content})


def history(stack: RunningStack, actor_id: str) -> list[dict[str, str]]:
    resp = stack.app.get(f"/chat/{actor_id}/history")
    resp.raise_for_status()
    return resp.json()["messages"]


def model_calls(stack: RunningStack, actor_id: str) -> list[re.Match[str]]:
    """The app's "model call: ..." lines for one actor, in order."""
    found = (loglines.app_message("model call", line) for line in stack.logs("app"))
    return [call for call in found if call is not None and call["id"] == actor_id]


def wait_model_calls(stack: RunningStack, actor_id: str, count: int) -> list[re.Match[str]]:
    return wait_for(
        lambda: (calls := model_calls(stack, actor_id)) and len(calls) >= count and calls,
        LOG_TIMEOUT_SECONDS,
        f"{count} model calls of {actor_id}",
    )


@pytest.fixture
def frozen_model(stack: RunningStack) -> Iterator[list[float]]:
    """The model server frozen (SIGSTOP) for FREEZE_SECONDS from now, then resumed; yields a
    list that holds the moment it resumed, once it has."""
    server = stack.stack.control[model_server.NAME]
    resumed: list[float] = []

    def resume() -> None:
        server.signal(signal.SIGCONT)
        resumed.append(time.monotonic())

    server.signal(signal.SIGSTOP)
    timer = threading.Timer(FREEZE_SECONDS, resume)
    timer.start()
    try:
        yield resumed
    finally:
        timer.join()


def finish_abandoned_calls(stack: RunningStack) -> None:
    """Until the server has answered what the app gave up on: llama.cpp's server answers one
    request at a time, so a one-token request comes back only after those."""
    server = stack.stack.config.model
    assert server is not None
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    httpx.post(f"{server.url}/chat/completions", json=body, timeout=120).raise_for_status()


def send_together(stack: RunningStack, actor_ids: list[str]) -> list[float]:
    """One message to each actor id, all sent at once; the seconds each took to answer 200."""
    start = threading.Barrier(len(actor_ids))
    took: list[float] = [0.0] * len(actor_ids)

    def send(index: int, actor_id: str) -> None:
        with httpx.Client(base_url=stack.stack.app_url, timeout=60) as client:
            start.wait()
            began = time.monotonic()
            resp = client.post(f"/chat/{actor_id}", json={"content": f"Say hello to {index}."})
            took[index] = time.monotonic() - began
            assert resp.status_code == 200, resp.text

    threads = [threading.Thread(target=send, args=(i, a)) for i, a in enumerate(actor_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took


def test_the_reply_is_the_models(stack: RunningStack) -> None:
    resp = chat(stack, "m-hello", "Hello! What is the capital of France?")
    assert resp.status_code == 200, resp.text
    reply = resp.json()["reply"]
    assert reply["role"] == "assistant"
    assert reply["content"].strip() and not reply["content"].startswith("You said:")
    assert history(stack, "m-hello") == [
        {"role": "user", "content": "Hello! What is the capital of France?"},
        reply,
    ]
    (call,) = wait_model_calls(stack, "m-hello", 1)
    assert call["model"] == MODEL
    assert int(call["tokens"]) == int(call["tokens_in"]) + int(call["tokens_out"]) > 0


def test_one_actor_takes_one_model_call_at_a_time(
    stack: RunningStack, arrivals: list[tuple[float, str]], frozen_model: list[float]
) -> None:
    """The second message to one actor waits for the first's whole model call: its own call
    starts only once the first one ended, after the freeze."""
    took = send_together(stack, ["m-queue", "m-queue"])
    first, second = timed_calls(arrivals, "m-queue", 2)
    (resumed,) = frozen_model
    assert first.start < resumed - FREEZE_SECONDS / 2 < resumed < first.end
    assert second.start >= first.end - LOG_SLACK_SECONDS
    # One after the other: the later answer took at least both calls.
    assert max(took) >= first.seconds + second.seconds


def test_two_actors_call_the_model_side_by_side(
    stack: RunningStack, arrivals: list[tuple[float, str]], frozen_model: list[float]
) -> None:
    """Two actors' calls are both under way during the freeze. (llama.cpp's server then answers
    them one after the other; a hosted API answers both at once.)"""
    took = send_together(stack, ["m-side-a", "m-side-b"])
    (call_a,) = timed_calls(arrivals, "m-side-a", 1)
    (call_b,) = timed_calls(arrivals, "m-side-b", 1)
    (resumed,) = frozen_model
    for call in (call_a, call_b):
        assert call.start < resumed - FREEZE_SECONDS / 2 < resumed < call.end
    # Side by side: the later answer took less than the two calls one after the other.
    assert max(took) < call_a.seconds + call_b.seconds


def test_a_stopped_model_is_a_clean_502_and_the_history_stays(stack: RunningStack) -> None:
    assert chat(stack, "m-stop", "first").status_code == 200
    before = history(stack, "m-stop")
    stack.stack.control[model_server.NAME].stop()
    try:
        resp = chat(stack, "m-stop", "second")
        assert resp.status_code == 502, resp.text
        detail = resp.json()["detail"]
        assert f"ChatAgent m-stop: the model {MODEL}" in detail
        assert "is the model server running?" in detail
        assert "history is unchanged" in detail
        assert history(stack, "m-stop") == before
        stack.wait_for_log("app", rf"model call failed: ChatAgent m-stop: {MODEL}: ", 10)
    finally:
        stack.stack.start_model()
    assert chat(stack, "m-stop", "third").status_code == 200
    assert [m["content"] for m in history(stack, "m-stop")][::2] == ["first", "third"]


def test_a_model_slower_than_its_timeout_is_a_504_and_the_history_stays(
    stack: RunningStack,
) -> None:
    assert chat(stack, "m-slow", "first").status_code == 200
    before = history(stack, "m-slow")
    server = stack.stack.control[model_server.NAME]
    server.signal(signal.SIGSTOP)
    try:
        began = time.monotonic()
        resp = chat(stack, "m-slow", "second")
        waited = time.monotonic() - began
    finally:
        server.signal(signal.SIGCONT)
        finish_abandoned_calls(stack)
    assert resp.status_code == 504, resp.text
    detail = resp.json()["detail"]
    assert f"ChatAgent m-slow: the model {MODEL}" in detail
    assert f"no answer within LLM_TIMEOUT_SECONDS={TIMEOUT_SECONDS}s" in detail
    assert TIMEOUT_SECONDS <= waited < TIMEOUT_SECONDS + 5
    assert history(stack, "m-slow") == before


def test_a_spent_budget_is_a_429_with_the_reset_time(stack: RunningStack) -> None:
    began = datetime.now(UTC).replace(microsecond=0)
    for number in range(CALLS_PER_HOUR):
        assert chat(stack, "m-budget", f"message {number}").status_code == 200
    before = history(stack, "m-budget")
    resp = chat(stack, "m-budget", "one too many")
    assert resp.status_code == 429, resp.text
    detail = resp.json()["detail"]
    assert f"ChatAgent m-budget has spent its model budget ({CALLS_PER_HOUR} calls per hour)" in (
        detail
    )
    found = RESET.search(detail)
    assert found, detail
    reset = datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 3590 <= (reset - began).total_seconds() <= 3600 + 60
    assert history(stack, "m-budget") == before
    # No call was made for it: the budget is checked first.
    assert len(model_calls(stack, "m-budget")) == CALLS_PER_HOUR
    # Kept in the actor's state, next to its history.
    stored = stack.redis("HGET", "chat-agent||ChatAgent||m-budget||model_budget", "data")
    assert f'"calls":{CALLS_PER_HOUR}' in stored.replace(" ", ""), stored


def test_the_key_never_leaves_the_client(stack: RunningStack) -> None:
    """Not in a log line, not in /docs or the API schema, not in an answer (a reply, a 502)."""
    replied = chat(stack, "m-key", "What is an API key?")
    assert replied.status_code == 200, replied.text
    answers = [replied.text, history(stack, "m-key").__repr__()]
    answers += [stack.app.get(path).text for path in ("/docs", "/openapi.json")]
    server = stack.stack.control[model_server.NAME]
    server.stop()
    try:
        failed = chat(stack, "m-key-2", "hello")
        assert failed.status_code == 502
        answers.append(failed.text)
    finally:
        stack.stack.start_model()
    for answer in answers:
        assert API_KEY not in answer
    assert stack.log and not [line for line in stack.log if API_KEY in line]
