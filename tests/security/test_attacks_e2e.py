"""Attacks on the real stack of every step: a fuzzed public API, forged actor callbacks, hostile
text, bursts of concurrent messages, and the app killed in the middle of one.

One stack per step, shared by this module's tests (the order below keeps the crash last).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from daprlab.harness import RunningStack, report_measured
from daprlab.paths import steps
from daprlab.stack.command_lines import APP_API_TOKEN_ENV
from daprlab.wait import wait_for
from lab_plumbing.idempotency import HEADER, KEY_PATTERN
from tests.support.browser import browser, console_errors, wait_in_page

__all__ = ["browser"]

pytestmark = pytest.mark.e2e

# The lab's own API in each step: exactly what /docs lists (the SDK's routes stay out of it).
PUBLIC_ROUTES = {
    "01_actor_timers": {
        "POST /chat/{actor_id}", "GET /chat/{actor_id}/history",
        "GET /chat/{actor_id}/timer", "DELETE /chat/{actor_id}/timer",
    },
    "02_actor_reminders": {
        "POST /chat/{actor_id}", "GET /chat/{actor_id}/history",
        "GET /chat/{actor_id}/expiry", "DELETE /chat/{actor_id}/expiry",
    },
    "03_actor_reentrancy": {
        "POST /chat/{actor_id}", "GET /chat/{actor_id}/history", "GET /reentrancy",
    },
    "04_runtime_config": {
        "POST /chat/{actor_id}", "GET /chat/{actor_id}/history",
        "POST /quick-chat/{actor_id}", "GET /quick-chat/{actor_id}/history",
        "GET /runtime/actors",
    },
}  # fmt: skip
BURST_CONVERSATIONS = 20
BURST_MESSAGES = 25
# Above every conversation's length here, so that no message is trimmed away.
HISTORY_MAX_PAIRS = 100
FUZZ_EXAMPLES = 20
# Fewer than this many generated cases for a route would mean the fuzzer barely reached it.
FUZZ_MIN_CASES = 10
BURST_TIMEOUT_SECONDS = 120
APP_ENV = {
    "HISTORY_MAX_PAIRS": str(HISTORY_MAX_PAIRS),
    # A slow machine may queue a burst's last messages long: under daprd's 60 s actor timeout.
    "ACTOR_CALL_TIMEOUT_SECONDS": "55",
}
# The app is killed once it has recorded this share of the burst.
KILL_AFTER_RECORDED = BURST_CONVERSATIONS * BURST_MESSAGES // 3
TOKEN_HEADER = "dapr-api-token"
FUZZ_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
# What a fresh key keeps of a generated one: with "-" and 32 hex digits, at most 128 characters.
KEY_KEEP = 95
# The body and its fields, as a 422 names them (the routes' parameters come from the schema).
BODY_FIELDS = {"body", "role", "content"}


@pytest.fixture(scope="module", params=steps())
def running(request: pytest.FixtureRequest, module_lab: Callable[..., RunningStack]):
    """The step's stack; stopped before the next step's starts (two would share two cores)."""
    stack = module_lab(request.param, app_env=APP_ENV)
    yield stack
    stack.stop()


def step_of(running: RunningStack) -> str:
    return running.stack.config.step


def token_of(running: RunningStack) -> str:
    return running.stack.config.app_api_token


def say(request: pytest.FixtureRequest, line: str) -> None:
    """A number this run measured, in pytest's summary ("measured") after the run."""
    report_measured(request.config, line)


# ---- 1. the public API, fuzzed from its own OpenAPI schema -----------------------------------


@pytest.fixture(scope="module")
def fuzz_counts(request: pytest.FixtureRequest) -> Iterator[Counter[tuple[str, str, str]]]:
    """Generated cases per (step, route, mode), printed after the module."""
    counts: Counter[tuple[str, str, str]] = Counter()
    yield counts
    for (step, route, mode), cases in sorted(counts.items()):
        say(request, f"fuzzed {step}: {route} ({mode}): {cases} cases")


def unnamed_errors(body: object, fields: set[str]) -> list[object]:
    """The errors of a 4xx body that name none of `fields` (FastAPI gives each a location, such as
    ["body", "content"], ["path", "actor_id"], or ["body", 0] for JSON that does not parse)."""
    if not isinstance(body, dict) or not isinstance(body.get("detail"), list) or not body["detail"]:
        return [body]
    return [
        error
        for error in body["detail"]
        if not (isinstance(error, dict) and fields & set(map(str, error.get("loc", []))))
    ]


def fresh_idempotency_key(case: Case) -> None:
    """A valid generated Idempotency-Key made unique: the fuzzer draws the same short keys again
    (with other bodies), and a reused key is rightly refused, which is no finding."""
    for name, value in list((case.headers or {}).items()):
        if name.lower() == HEADER.lower() and re.fullmatch(KEY_PATTERN, str(value)):
            case.headers[name] = f"{str(value)[:KEY_KEEP]}-{uuid.uuid4().hex}"


def fuzz(
    operation: APIOperation,
    mode: GenerationMode,
    session: requests.Session,
    count: Callable[[], None],
) -> None:
    """Send `FUZZ_EXAMPLES` generated requests to one route; each must pass every check."""
    fields = {p.name for p in operation.iter_parameters()} | BODY_FIELDS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis folder in the checkout
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # a failure is reported as found, not shrunk for minutes
    )
    def one_case(case: Case) -> None:
        count()
        fresh_idempotency_key(case)
        response = case.call_and_validate(session=session, checks=FUZZ_CHECKS)
        if 400 <= response.status_code < 500:
            unnamed = unnamed_errors(response.json(), fields)
            assert not unnamed, (
                f"{operation.label}: {response.status_code} names no field: {unnamed}"
            )

    one_case()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_public_routes_never_fail_and_name_the_bad_field(
    running: RunningStack, mode: GenerationMode, fuzz_counts: Counter[tuple[str, str, str]]
) -> None:
    """Schema-valid input (positive) and schema-breaking input (negative) on every route: never
    a 5xx, valid input accepted, invalid input refused naming the field, bodies as documented."""
    step = step_of(running)
    schema = schemathesis.openapi.from_url(f"{running.stack.app_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == PUBLIC_ROUTES[step]
    for operation in operations:
        key = (step, operation.label, mode.value)
        takes_input = bool(list(operation.iter_parameters())) or bool(operation.body)
        if not takes_input and mode is GenerationMode.NEGATIVE:
            continue  # no input to break: the positive case covers the route

        def count(key: tuple[str, str, str] = key) -> None:
            fuzz_counts[key] += 1

        with requests.Session() as session:
            fuzz(operation, mode, session, count)
        # Without input there is one request to make; with input, the fuzzer must vary it.
        least = FUZZ_MIN_CASES if takes_input else 1
        assert fuzz_counts[key] >= least, f"{operation.label}: only {fuzz_counts[key]} cases"


# ---- 2. the actor callbacks, called by someone other than the sidecar -------------------------


def forged_callbacks(actor_id: str) -> list[tuple[str, str, object]]:
    """(method, path, JSON body) of the calls daprd makes to the app, aimed at `actor_id`."""
    actor = f"/actors/ChatAgent/{actor_id}"
    return [
        ("PUT", f"{actor}/method/ProcessMessage", {"role": "assistant", "content": "injected"}),
        ("PUT", f"{actor}/method/ProcessMessage", {"role": "user", "content": "forged"}),
        ("PUT", f"{actor}/method/GetConversationHistory", None),
        ("PUT", f"{actor}/method/remind/clear-history", {"data": "", "dueTime": "0s"}),
        ("PUT", f"{actor}/method/timer/report-message-count", {"callback": "x", "data": None}),
        ("DELETE", actor, None),
        ("GET", "/dapr/config", None),
        # Percent-encoding reaches the same route: the check must see the decoded path.
        ("PUT", f"/%61ctors/ChatAgent/{actor_id}/method/ProcessMessage", {"content": "forged"}),
        # An actor type the app does not host: refused before anything looks it up.
        ("PUT", f"/actors/NoSuchType/{actor_id}/method/Anything", None),
    ]


# Each a way to present a token that is not this stack's: (name, headers for a given token).
WRONG_TOKENS: list[tuple[str, Callable[[str], dict[str, str]]]] = [
    ("no token", lambda token: {}),
    ("a wrong token", lambda token: {TOKEN_HEADER: "not-the-token"}),
    ("an empty token", lambda token: {TOKEN_HEADER: ""}),
    ("the token cut short", lambda token: {TOKEN_HEADER: token[:-1]}),
    ("the token and more", lambda token: {TOKEN_HEADER: token + "x"}),
    ("the token in upper case", lambda token: {TOKEN_HEADER: token.upper() + "!"}),
    ("the token as a bearer", lambda token: {"Authorization": f"Bearer {token}"}),
    ("the token under another header", lambda token: {"dapr-api-key": token}),
]


def redis_state(running: RunningStack, actor_id: str) -> dict[str, str]:
    """Every state key of a ChatAgent in Redis, with what daprd stored under it."""
    keys = running.redis("KEYS", f"*||ChatAgent||{actor_id}||*").split()
    return {key: running.redis("HGETALL", key) for key in keys}


@dataclass
class Conversation:
    """A conversation with known content, and how to see that nobody changed it."""

    actor_id: str
    history: list[dict[str, str]] = field(default_factory=list)
    stored: dict[str, str] = field(default_factory=dict)

    def snapshot(self, running: RunningStack) -> tuple[list[dict[str, str]], dict[str, str]]:
        resp = running.app.get(f"/chat/{self.actor_id}/history")
        assert resp.status_code == 200, resp.text
        return resp.json()["messages"], redis_state(running, self.actor_id)

    def assert_unchanged(self, running: RunningStack) -> None:
        assert self.snapshot(running) == (self.history, self.stored)
        deactivated = f"ChatAgent {self.actor_id} deactivated"
        assert not any(deactivated in line for line in running.logs("app"))


@pytest.fixture(scope="module")
def victim(running: RunningStack) -> Conversation:
    """A conversation on the step's stack that the attacks below must leave as it is."""
    conversation = Conversation("eve")
    resp = running.app.post("/chat/eve", json={"content": "my own words"})
    assert resp.status_code == 200, resp.text
    conversation.history, conversation.stored = conversation.snapshot(running)
    assert [m["role"] for m in conversation.history] == ["user", "assistant"]
    assert conversation.stored, "the conversation is in Redis"
    return conversation


@pytest.mark.parametrize(("how", "headers_for"), WRONG_TOKENS, ids=[w[0] for w in WRONG_TOKENS])
def test_callbacks_without_the_token_are_refused_and_change_nothing(
    running: RunningStack,
    victim: Conversation,
    how: str,
    headers_for: Callable[[str], dict[str, str]],
) -> None:
    headers = headers_for(token_of(running))
    for method, path, body in forged_callbacks(victim.actor_id):
        resp = running.app.request(method, path, json=body, headers=headers)
        assert resp.status_code == 401, (
            f"{method} {path} with {how}: {resp.status_code} {resp.text}"
        )
        assert "dapr-api-token" in resp.json()["detail"]
    victim.assert_unchanged(running)


def test_the_right_token_in_any_header_case_is_accepted(
    running: RunningStack, victim: Conversation
) -> None:
    """The refusals above are about the token: with it a callback runs (headers ignore case)."""
    for header in (TOKEN_HEADER, TOKEN_HEADER.upper()):
        resp = running.app.put(
            f"/actors/ChatAgent/{victim.actor_id}/method/GetConversationHistory",
            headers={header: token_of(running)},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == victim.history
    resp = running.app.get("/dapr/config", headers={TOKEN_HEADER: token_of(running)})
    assert resp.status_code == 200 and "ChatAgent" in resp.json()["entities"]


def test_the_probe_route_stays_open(running: RunningStack) -> None:
    assert running.app.get("/healthz").status_code == 200


def test_the_sidecar_and_the_app_got_the_same_fresh_token(running: RunningStack) -> None:
    """Read from the processes' own environments: each stack makes its own random token."""
    token = token_of(running)
    assert len(token) >= 43  # 32 random bytes
    instance = running.stack.instances[0]
    for process in (instance.daprd, instance.app):
        assert process is not None and process.pid is not None
        environ = open(f"/proc/{process.pid}/environ", "rb").read().split(b"\0")
        assert f"{APP_API_TOKEN_ENV}={token}".encode() in environ, process.name


# ---- 3. the actor checks its own input: no way around the public API's rules -----------------

# What ProcessMessage must refuse, whoever calls it, with the reason it gives.
BAD_MESSAGES = [
    ({"role": "assistant", "content": "injected"}, "role"),
    ({"role": "system", "content": "obey"}, "role"),
    ({"content": ""}, "content"),
    ({"content": "   "}, "content must not be blank"),
    ({"content": "x" * 4001}, "content"),
    ({"content": 12}, "content"),
    ({"role": "user"}, "content"),
    (["not", "a", "message"], "ChatMessage"),
    ("just text", "ChatMessage"),
]


@pytest.mark.parametrize(("message", "reason"), BAD_MESSAGES, ids=lambda v: repr(v)[:30])
def test_the_actor_refuses_bad_input_from_the_sidecars_api(
    running: RunningStack, victim: Conversation, message: object, reason: str
) -> None:
    """daprd's own actor API (open on loopback) skips the app's routes: the actor checks anyway."""
    resp = running.sidecar.post(
        f"/v1.0/actors/ChatAgent/{victim.actor_id}/method/ProcessMessage", json=message
    )
    assert resp.status_code == 500, resp.text
    assert "ProcessMessage refused" in resp.text and reason in resp.text, resp.text
    victim.assert_unchanged(running)


def test_the_actor_refuses_a_forged_assistant_message_even_with_the_token(
    running: RunningStack, victim: Conversation
) -> None:
    resp = running.app.put(
        f"/actors/ChatAgent/{victim.actor_id}/method/ProcessMessage",
        json={"role": "assistant", "content": "injected"},
        headers={TOKEN_HEADER: token_of(running)},
    )
    assert resp.status_code == 500 and "ProcessMessage refused" in resp.text, resp.text
    victim.assert_unchanged(running)


# ---- 4. text that must come back exactly as sent -----------------------------------------------

HOSTILE_TEXT = {
    "NUL": "before\x00after",
    "RTL and bidi controls": "שלום עולם \u202eevil\u202c مرحبا",
    "combining marks": "e\u0301 Z\u0334\u0321\u031b\u035aa\u0338l\u0335g\u0337o",
    "emoji": "👩‍👩‍👧‍👦 🇩🇪 👍🏽 \U0001fae0",
    "4000 multi-byte characters": ("日本語" * 1334)[:4000],
    "4000 emoji": "😀" * 4000,
    "JSON object": '{"role": "assistant", "content": "x"}',
    "JSON scalars": "null",
    "JSON number": "12",
    "JSON string": '"quoted"',
    "duration": "5s",
    "Go duration": "0h1m0s0ms0μs",
    "ISO duration": "P1DT2H",
    "date": "2024-01-02",
    "date and time": "2024-01-02T10:00:00Z",
    "spaces kept": "  leading and trailing  ",
    "line breaks": "one\r\ntwo\nthree\r",
    "escapes": "back\\slash \\u0041 \\n",
}


def test_hostile_text_round_trips_exactly(running: RunningStack) -> None:
    """Sent as JSON escapes, each text comes back in the reply and the history unchanged."""
    replies = []
    for name, text in HOSTILE_TEXT.items():
        # ensure_ascii: lone surrogates can only travel as \\u escapes.
        body = json.dumps({"content": text}, ensure_ascii=True)
        resp = running.app.post(
            "/chat/hostile", content=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 200, f"{name}: {resp.status_code} {resp.text[:300]}"
        reply = json.loads(resp.content)["reply"]["content"]
        assert reply.startswith(f"You said: {text}"), name
        replies.append(reply)
    resp = running.app.get("/chat/hostile/history")
    assert resp.status_code == 200, resp.text[:300]
    messages = json.loads(resp.content)["messages"]
    assert [m["content"] for m in messages[::2]] == list(HOSTILE_TEXT.values())
    assert [m["content"] for m in messages[1::2]] == replies
    # And as stored: the state in Redis holds the same text.
    (history_key,) = [key for key in redis_state(running, "hostile") if key.endswith("||history")]
    stored = json.loads(running.redis("HGET", history_key, "data"))
    assert [m["content"] for m in stored[::2]] == list(HOSTILE_TEXT.values())


# Not text: UTF-8 cannot hold a lone surrogate (Go's JSON in daprd would turn it into U+FFFD).
LONE_SURROGATES = {
    "lone high surrogate": "\ud800",
    "lone low surrogate": "a\udfffb",
    "reversed surrogate pair": "\udc00\ud800",
}


@pytest.mark.parametrize("text", LONE_SURROGATES.values(), ids=LONE_SURROGATES.keys())
def test_a_lone_surrogate_is_refused_naming_the_content(running: RunningStack, text: str) -> None:
    """Escaped in JSON it parses, but is no Unicode text: a 422 naming `content`, nothing kept."""
    body = json.dumps({"content": text}, ensure_ascii=True)
    resp = running.app.post(
        "/chat/surrogate", content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    (error,) = json.loads(resp.content)["detail"]  # valid JSON: the echo is escaped, too
    assert error["loc"] == ["body", "content"]
    assert error["input"] == text
    assert running.app.get("/chat/surrogate/history").json()["messages"] == []


# ---- 5. /docs in a real browser with no internet: the step's routes, and "Try it out" --------


def operation_blocks(driver: webdriver.Chrome) -> dict[str, WebElement]:
    """Swagger UI's rendered operations, by "METHOD /path"."""
    blocks = {}
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
            "data-path"
        )
        blocks[f"{method} {path}"] = block
    return blocks


def test_docs_page_works_offline_and_try_it_out_echoes(
    running: RunningStack, browser: webdriver.Chrome
) -> None:
    step = step_of(running)
    app_url = running.stack.app_url
    browser.get(f"{app_url}/docs")
    blocks = wait_in_page(
        browser,
        lambda d: (
            (found := operation_blocks(d)) and len(found) >= len(PUBLIC_ROUTES[step]) and found
        ),
        "Swagger UI rendered the operations",
    )
    assert set(blocks) == PUBLIC_ROUTES[step]
    # Everything the page loaded came from the app itself.
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(url.startswith(app_url) for url in loaded), loaded

    chat = blocks["POST /chat/{actor_id}"]
    chat.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_in_page(
        browser, lambda _: chat.find_elements(By.CSS_SELECTOR, ".try-out__btn"), "Try it out"
    )
    chat.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    actor_id = wait_in_page(
        browser,
        lambda _: chat.find_elements(By.CSS_SELECTOR, "input[placeholder='actor_id']"),
        "the actor_id field",
    )[0]
    actor_id.send_keys("swagger")
    body = chat.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
    body.send_keys(Keys.CONTROL, "a")
    body.send_keys(Keys.DELETE)
    body.send_keys('{"content": "hello from the docs page"}')
    chat.find_element(By.CSS_SELECTOR, ".execute").click()
    wait_in_page(
        browser,
        lambda _: any(
            "You said: hello from the docs page" in code.text
            for code in chat.find_elements(By.CSS_SELECTOR, ".live-responses-table .microlight")
        ),
        "the echo reply under Try it out",
    )
    assert console_errors(browser) == []
    history = running.app.get("/chat/swagger/history").json()["messages"]
    assert [m["content"] for m in history][:1] == ["hello from the docs page"]


# ---- 6. bursts of concurrent messages, and the app killed in the middle of one -----------------


@dataclass
class Burst:
    """BURST_MESSAGES concurrent messages to each of BURST_CONVERSATIONS conversations."""

    name: str
    answered: dict[str, dict[str, str]] = field(default_factory=dict)  # actor: content -> reply
    failed: Counter[str] = field(default_factory=Counter)  # why a message got no 200
    errors: list[str] = field(default_factory=list)  # the bodies of the error answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def actor_ids(self) -> list[str]:
        return [f"{self.name}-{n}" for n in range(BURST_CONVERSATIONS)]

    def contents(self, actor_id: str) -> list[str]:
        return [f"{actor_id} message {n}" for n in range(BURST_MESSAGES)]

    @property
    def answered_count(self) -> int:
        with self.lock:
            return sum(len(replies) for replies in self.answered.values())

    async def send(self, app_url: str) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(
            base_url=app_url, timeout=BURST_TIMEOUT_SECONDS, limits=limits
        ) as client:

            async def one(actor_id: str, content: str) -> None:
                try:
                    resp = await client.post(f"/chat/{actor_id}", json={"content": content})
                except httpx.TransportError as err:
                    with self.lock:
                        self.failed[type(err).__name__] += 1
                    return
                with self.lock:
                    if resp.status_code == 200:
                        replies = self.answered.setdefault(actor_id, {})
                        replies[content] = resp.json()["reply"]["content"]
                    else:
                        self.failed[f"HTTP {resp.status_code}"] += 1
                        self.errors.append(resp.text)

            await asyncio.gather(
                *(
                    one(actor_id, content)
                    for n in range(BURST_MESSAGES)
                    for actor_id in self.actor_ids
                    for content in [self.contents(actor_id)[n]]
                )
            )

    def check_histories(self, running: RunningStack, all_kept: bool = False) -> None:
        """Each answered message once, followed by its own reply; whole pairs only. `all_kept`:
        every message sent, answered or not (a 504 still records it), is there once."""
        for actor_id in self.actor_ids:
            resp = running.app.get(f"/chat/{actor_id}/history")
            assert resp.status_code == 200, resp.text
            messages = resp.json()["messages"]
            assert len(messages) % 2 == 0, f"{actor_id} holds half a pair: {messages[-1]}"
            pairs = list(zip(messages[::2], messages[1::2], strict=True))
            assert all(u["role"] == "user" and a["role"] == "assistant" for u, a in pairs)
            seen = Counter(user["content"] for user, _ in pairs)
            assert set(seen) <= set(self.contents(actor_id)), f"{actor_id}: foreign messages"
            assert max(seen.values(), default=1) == 1, f"{actor_id}: a message kept twice"
            answered = self.answered.get(actor_id, {})
            assert set(answered) <= set(seen), f"{actor_id} lost {set(answered) - set(seen)}"
            if all_kept:
                assert sorted(seen) == sorted(self.contents(actor_id)), f"{actor_id} lost some"
            for user, assistant in pairs:
                expected = answered.get(user["content"])
                if expected is not None:
                    assert assistant["content"] == expected
                else:  # saved, but its answer never arrived: still a whole pair
                    assert assistant["content"].startswith(f"You said: {user['content']}")


def test_concurrent_bursts_keep_every_message_once(
    running: RunningStack, request: pytest.FixtureRequest
) -> None:
    burst = Burst("burst")
    asyncio.run(burst.send(running.stack.app_url))
    total = BURST_CONVERSATIONS * BURST_MESSAGES
    say(
        request,
        f"burst {step_of(running)}: {burst.answered_count}/{total} answered 200, "
        f"the rest: {dict(burst.failed)}",
    )
    # A slow machine may time a queued message out (504: recorded all the same), nothing else.
    assert set(burst.failed) <= {"HTTP 504"}, burst.errors
    assert burst.answered_count > total // 2, burst.failed
    burst.check_histories(running, all_kept=True)


def test_the_app_killed_mid_burst_loses_no_answered_message(
    running: RunningStack, request: pytest.FixtureRequest
) -> None:
    burst = Burst("crash")
    app = running.stack.instances[0].app
    assert app is not None
    before = app.mark()

    def recorded() -> int:
        """Messages the app has saved in this burst, from its log: the client may lag behind."""
        return sum("recorded message" in line for line in app.lines_since(before))

    sender = threading.Thread(target=asyncio.run, args=(burst.send(running.stack.app_url),))
    sender.start()
    try:
        wait_for(
            lambda: recorded() >= KILL_AFTER_RECORDED,
            BURST_TIMEOUT_SECONDS,
            f"{KILL_AFTER_RECORDED} messages recorded",
        )
        app.signal(signal.SIGKILL)
        recorded_at_kill = recorded()
    finally:
        sender.join(BURST_TIMEOUT_SECONDS)
    assert not sender.is_alive(), "the burst's requests did not end after the kill"
    total = BURST_CONVERSATIONS * BURST_MESSAGES
    say(
        request,
        f"crash {step_of(running)}: SIGKILL after ~{recorded_at_kill}/{total} recorded; "
        f"{burst.answered_count} answered 200, the rest: {dict(burst.failed)}",
    )
    assert burst.answered_count < total, "the kill came after the burst: nothing was cut off"
    running.restart_app()
    burst.check_histories(running)
    for actor_id in burst.actor_ids:  # and each conversation goes on
        assert running.app.post(f"/chat/{actor_id}", json={"content": "after"}).status_code == 200
