"""A retried message is recorded once, on the real stack: the `Idempotency-Key` header of POST
/chat sent twice in a row, five times at once, across a deactivation, and after a 504 and a 500
whose first attempt landed (Redis frozen with SIGSTOP); a reused key and a bad key are 422s."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from daprlab.harness import RunningStack, report_measured
from daprlab.wait import wait_for
from lab_plumbing.idempotency import HEADER, KEY_PATTERN, REUSED_TYPE

pytestmark = pytest.mark.e2e
# Step 04: its short idle timeout deactivates an actor between two sends; it has /quick-chat too.
STEP = "04_runtime_config"
IDLE_ENV = {"ACTOR_IDLE_TIMEOUT_SECONDS": "2", "ACTOR_SCAN_INTERVAL_SECONDS": "1"}
# The retries after a 504 and a 500: step 01, the step of the base agent's other outage tests.
OUTAGE_STEP = "01_actor_timers"
CALL_TIMEOUT_SECONDS = 2
CONCURRENT_SENDS = 5
LAND_SECONDS = 30  # how long a write held by a frozen Redis may take to land once it resumes
LOG_SECONDS = 15


@pytest.fixture(scope="module")
def running(module_lab: Callable[..., RunningStack]) -> RunningStack:
    return module_lab(STEP, app_env=IDLE_ENV)


def send(
    running: RunningStack, actor: str, content: str, key: str | None, route: str = "chat"
) -> httpx.Response:
    headers = {HEADER: key} if key is not None else {}
    return running.app.post(f"/{route}/{actor}", json={"content": content}, headers=headers)


def pairs(running: RunningStack, actor: str, route: str = "chat") -> list[tuple[str, str]]:
    """The actor's history as (message, reply) pairs."""
    resp = running.app.get(f"/{route}/{actor}/history")
    assert resp.status_code == 200, resp.text
    contents = [m["content"] for m in resp.json()["messages"]]
    return list(zip(contents[0::2], contents[1::2], strict=True))


def repeats_logged(running: RunningStack, actor_type: str, actor: str) -> list[str]:
    pattern = f"{actor_type} {actor} answered a repeat of message "
    return [line for line in running.logs("app") if pattern in line]


def say(request: pytest.FixtureRequest, line: str) -> None:
    report_measured(request.config, f"idempotency: {line}")


def new_key() -> str:
    return str(uuid.uuid4())


def test_the_same_key_twice_records_one_pair(running: RunningStack) -> None:
    key = new_key()
    first, second = (send(running, "twice", "hello", key) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert second.json() == first.json()
    assert pairs(running, "twice") == [("hello", "You said: hello")]
    running.wait_for_log("app", r"ChatAgent twice answered a repeat of message 1$", LOG_SECONDS)
    # A new key is a new message, even with the same text.
    assert send(running, "twice", "hello", new_key()).status_code == 200
    assert len(pairs(running, "twice")) == 2


def test_without_a_key_the_same_message_is_recorded_again(running: RunningStack) -> None:
    for _ in range(2):
        assert send(running, "nokey", "hello", None).status_code == 200
    assert pairs(running, "nokey") == [("hello", "You said: hello")] * 2
    assert repeats_logged(running, "ChatAgent", "nokey") == []


def test_concurrent_sends_with_one_key_record_one_pair(
    running: RunningStack, request: pytest.FixtureRequest
) -> None:
    key = new_key()
    with ThreadPoolExecutor(max_workers=CONCURRENT_SENDS) as pool:
        answers = list(
            pool.map(lambda _: send(running, "crowd", "at once", key), range(CONCURRENT_SENDS))
        )
    assert [a.status_code for a in answers] == [200] * CONCURRENT_SENDS, [a.text for a in answers]
    assert {a.json()["reply"]["content"] for a in answers} == {"You said: at once"}
    assert pairs(running, "crowd") == [("at once", "You said: at once")]
    found = running.wait_for_log(
        "app", r"ChatAgent crowd answered a repeat of message 1$", LOG_SECONDS, CONCURRENT_SENDS - 1
    )
    assert len(found) == CONCURRENT_SENDS - 1
    say(
        request,
        f"{CONCURRENT_SENDS} concurrent sends, one key: statuses "
        f"{[a.status_code for a in answers]}, {len(pairs(running, 'crowd'))} pair stored, "
        f"{len(found)} answered as repeats",
    )


def test_a_repeat_after_a_deactivation_gets_the_same_reply(running: RunningStack) -> None:
    key = new_key()
    first = send(running, "sleepy", "remember me", key)
    assert first.status_code == 200, first.text
    running.wait_for_log("app", r"ChatAgent sleepy deactivated$", LOG_SECONDS)
    again = send(running, "sleepy", "remember me", key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(running.wait_for_log("app", r"ChatAgent sleepy activated$", LOG_SECONDS, 2)) == 2
    assert pairs(running, "sleepy") == [("remember me", "You said: remember me")]
    assert len(repeats_logged(running, "ChatAgent", "sleepy")) == 1


def test_a_reused_key_with_another_message_is_a_422(running: RunningStack) -> None:
    key = new_key()
    assert send(running, "reuse", "first", key).status_code == 200
    resp = send(running, "reuse", "second", key)
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["type"] == REUSED_TYPE
    assert error["loc"] == ["header", HEADER]
    assert error["msg"].startswith(f"{HEADER} {key} came with another message before")
    assert pairs(running, "reuse") == [("first", "You said: first")]


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "a/b", "café"])
def test_a_bad_key_is_a_422_naming_the_header(running: RunningStack, key: str) -> None:
    resp = running.app.post(
        "/chat/badkey", json={"content": "hi"}, headers={HEADER: key.encode("latin-1")}
    )
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["header", HEADER]
    assert error["type"] == "string_pattern_mismatch"
    assert KEY_PATTERN in error["msg"]
    assert pairs(running, "badkey") == []


def test_quick_chat_takes_the_key_too(running: RunningStack) -> None:
    key = new_key()
    answers = [send(running, "q", "quick", key, route="quick-chat") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert pairs(running, "q", route="quick-chat") == [("quick", "You said: quick")]
    assert len(repeats_logged(running, "QuickChatAgent", "q")) == 1


def landed(running: RunningStack, actor: str, count: int) -> Callable[[], list | None]:
    """A check for wait_for: the history once it holds `count` pairs."""

    def check() -> list[tuple[str, str]] | None:
        resp = running.app.get(f"/chat/{actor}/history")
        if resp.status_code != 200:
            return None
        contents = [m["content"] for m in resp.json()["messages"]]
        found = list(zip(contents[0::2], contents[1::2], strict=True))
        return found if len(found) >= count else None

    return check


def test_a_retry_after_a_504_whose_first_attempt_landed_is_recorded_once(
    lab: Callable[..., RunningStack], request: pytest.FixtureRequest
) -> None:
    running = lab(OUTAGE_STEP, app_env={"ACTOR_CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT_SECONDS)})
    redis = running.stack.control["redis"]
    late = ("late", "You said: late")
    for actor, key in (("without", None), ("with", new_key())):
        # A first message activates the actor: its history is then read from the SDK's cache,
        # and a frozen Redis holds only the save.
        assert send(running, actor, "hi", None).status_code == 200
        redis.signal(signal.SIGSTOP)
        try:
            statuses = [send(running, actor, "late", key).status_code]
            if key is not None:  # a retry while the first attempt still waits for Redis
                statuses.append(send(running, actor, "late", key).status_code)
        finally:
            redis.signal(signal.SIGCONT)
        wait_for(landed(running, actor, 2), LAND_SECONDS, f"the first attempt for {actor}")
        retry = send(running, actor, "late", key)
        statuses.append(retry.status_code)
        assert retry.json()["reply"]["content"] == "You said: late", retry.text
        stored = pairs(running, actor).count(late)
        say(request, f"retry after a 504, key {actor}: statuses {statuses}, {stored} pairs stored")
        if key is None:
            assert (statuses, stored) == ([504, 200], 2)
        else:
            assert (statuses, stored) == ([504, 504, 200], 1)
            assert pairs(running, actor) == [("hi", "You said: hi"), late]
    running.wait_for_log("app", r"ChatAgent with answered a repeat of message 3$", LOG_SECONDS, 2)


def test_a_retry_after_a_500_whose_first_attempt_landed_is_recorded_once(
    lab: Callable[..., RunningStack], request: pytest.FixtureRequest
) -> None:
    # Without the retry policy, Redis' client gives up after its read timeout: a 500, and yet
    # Redis runs the write when it resumes (EXPERIMENTS.md, "Fault tolerance").
    running = lab(OUTAGE_STEP, resiliency=False)
    redis = running.stack.control["redis"]
    late = ("late", "You said: late")
    for actor, key in (("without", None), ("with", new_key())):
        assert send(running, actor, "hi", None).status_code == 200
        redis.signal(signal.SIGSTOP)
        try:
            first = send(running, actor, "late", key)
        finally:
            redis.signal(signal.SIGCONT)
        assert first.status_code == 500, first.text
        assert "the actor state store failed" in first.json()["detail"]
        wait_for(landed(running, actor, 2), LAND_SECONDS, f"the first attempt for {actor}")
        retry = send(running, actor, "late", key)
        assert retry.status_code == 200, retry.text
        assert retry.json()["reply"]["content"] == "You said: late"
        stored = pairs(running, actor).count(late)
        say(request, f"retry after a 500, key {actor}: statuses [500, 200], {stored} pairs stored")
        assert stored == (2 if key is None else 1)
