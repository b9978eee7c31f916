"""The lab console without a stack: its log-line patterns against the READMEs and the code, the
state it keeps, and reads that fail (a closed port) keeping the last values."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket

import pytest

from daprlab import loglines, netcheck, releases
from daprlab.console.run import step_settings
from daprlab.console.server import ConsoleServer
from daprlab.console.sources import Poller, Targets, parse_metrics, reminder_due_at
from daprlab.console.state import ConsoleState, StepSettings, last_tick_at
from daprlab.paths import step_dir, steps
from tests.support import readme_check
from tests.support.steps import app_source

# Each README-quoted kind of line, and the event the console makes of it.
README_LINE_KINDS = {
    "ChatAgent alice activated": "activated",
    "timer tick 1: ChatAgent alice has 2 messages": "timer tick",
    "timer stopped: ChatAgent bob": "timer stopped",
    "ChatAgent carol recorded message 1": "message recorded",
    "history expired: ChatAgent carol (reminder clear-history)": "reminder fired",
    "expiry cancelled: ChatAgent dave keeps its history": "reminder cancelled",
    "stale reminder clear-history ignored: ChatAgent dave": "reminder stale",
    "FollowUpAgent erin called back into ChatAgent erin: 0 messages": "follow-up call-back",
    "reentrancy for ChatAgent is on, maxStackDepth 32": "reentrancy",
}
FORMAT_ARGUMENT = re.compile(r"%[sd]")
STEPS = steps()
STRING_SAMPLES = ("Name-1", "on")
LABELS = 'actor_type="ChatAgent",app_id="chat-agent"'


def readme_app_lines() -> list[str]:
    return [
        line
        for step in STEPS
        for line in readme_check.log_lines((step_dir(step) / "README.md").read_text())
    ]


def rendered_log_calls() -> list[str]:
    """Every logger call of every step's app (main.py and lab_plumbing), rendered with each
    choice of sample values (a name or a switch's "on" for %s, a number for %d)."""
    rendered = []
    for step in STEPS:
        for fmt in readme_check.LOG_CALL.findall(app_source(step)):
            slots = FORMAT_ARGUMENT.findall(fmt)
            for choice in itertools.product(STRING_SAMPLES, repeat=slots.count("%s")):
                strings = iter(choice)
                rendered.append(
                    FORMAT_ARGUMENT.sub(lambda m, s=strings: "7" if m[0] == "%d" else next(s), fmt)
                )
    return rendered


def test_every_log_line_the_readmes_quote_is_an_event_of_the_console() -> None:
    lines = readme_app_lines()
    assert lines
    for line in lines:
        event = loglines.parse_app_line("app", line)
        assert event is not None, f"the console ignores a line the README quotes: {line}"
        message = line.split(":", 1)[1].strip()
        for quoted, kind in README_LINE_KINDS.items():
            if loglines.APP_PATTERNS[kind].match(quoted) and message == quoted:
                assert event.kind == kind, (line, event.kind)


def test_every_console_pattern_matches_a_log_call_of_the_code() -> None:
    """A renamed log line in a main.py breaks this test, not the console (silently)."""
    rendered = rendered_log_calls()
    for kind, pattern in loglines.APP_PATTERNS.items():
        assert any(pattern.match(line) for line in rendered), f"no logger call makes {kind!r}"
    for quoted, kind in README_LINE_KINDS.items():
        assert loglines.APP_PATTERNS[kind].match(quoted), (kind, quoted)


def test_an_unknown_line_is_counted_not_raised() -> None:
    state = ConsoleState("01_actor_timers", StepSettings())
    state.feed("app", "INFO:     something the console has never seen")
    state.feed("app", "Traceback (most recent call last):")
    state.feed("daprd", "not logfmt at all")
    state.feed("redis", "whatever Redis says is not read")
    assert state.unparsed == 3
    assert state.events_since(0) == []


def test_the_bench_reads_an_app_line_with_the_consoles_patterns() -> None:
    """The bench and the tests find ticks and fires in whole lines, by the console's patterns."""
    tick = loglines.app_message("timer tick", "INFO:     timer tick 3: ChatAgent t7 has 2 messages")
    assert tick is not None and (tick["tick"], tick["type"], tick["id"]) == ("3", "ChatAgent", "t7")
    fired = "INFO:     history expired: ChatAgent r1 (reminder clear-history)"
    assert loglines.app_message("reminder fired", fired)["id"] == "r1"
    assert loglines.app_message("timer tick", fired) is None
    assert loglines.app_message("activated", "ChatAgent p1 activated") is None  # no level prefix


def test_a_504_answer_is_an_event_of_its_actor() -> None:
    line = "WARNING:     answered 504: ChatAgent frank did not answer within 30s"
    event = loglines.parse_app_line("app", line)
    assert event is not None and (event.kind, event.actor) == (
        "504 answered",
        ("ChatAgent", "frank"),
    )
    no_actor = "WARNING:     answered 503: Dapr sidecar not reachable at http://127.0.0.1:3500"
    event = loglines.parse_app_line("app", no_actor)
    assert event is not None and (event.kind, event.actor) == ("503 answered", None)
    assert loglines.parse_app_line("app", "WARNING:     answered 500: ChatAgent x failed") is None
    # The access log (LOG_LEVEL=DEBUG) is known but makes no second event of the same answer.
    for status in ("200 OK", "504 Gateway Timeout"):
        access = f'INFO:     127.0.0.1:41234 - "POST /chat/frank HTTP/1.1" {status}'
        assert loglines.parse_app_line("app", access) is None


def test_the_code_logs_the_error_answers_the_console_reads() -> None:
    rendered = rendered_log_calls()
    assert any(loglines.ERROR_ANSWER.match(line) for line in rendered)


def test_ticks_and_the_timer_end_follow_the_step_settings() -> None:
    now = [1000.2]
    state = ConsoleState("01_actor_timers", StepSettings(1, 3, {"ChatAgent": 2}), lambda: now[0])
    for line in (
        "INFO:     ChatAgent alice activated",
        "INFO:     ChatAgent alice recorded message 1",
        "INFO:     timer tick 2: ChatAgent alice has 2 messages",
    ):
        state.feed("app", line)
    (alice,) = state.actors_since(0)
    assert (alice["active"], alice["ticks"], alice["messages"]) == (True, 2, 2)
    # First tick on the next whole second, 3 ticks in all: the same rule as step 01's main.py.
    assert alice["timer_ends_at"] == last_tick_at(1000.2, 1, 3) == 1003
    assert alice["idle_deadline_at"] == pytest.approx(1002.2)
    state.feed("app", "INFO:     ChatAgent alice deactivated")
    (alice,) = state.actors_since(0)
    assert (alice["active"], alice["timer_ends_at"]) == (False, None)


def test_a_deadlocks_late_call_back_is_no_re_entry() -> None:
    state = ConsoleState("03_actor_reentrancy", StepSettings())
    state.feed(
        "app",
        "WARNING:     deadlock: ChatAgent frank waited 5s for FollowUpAgent frank, "
        "which waits to re-enter ChatAgent frank",
    )
    state.feed("app", "INFO:     FollowUpAgent frank called back into ChatAgent frank: 0 messages")
    rows = {(a["type"], a["id"]): a for a in state.actors_since(0)}
    assert rows[("ChatAgent", "frank")]["follow_up"] == "deadlocked"
    state.feed("app", "INFO:     FollowUpAgent frank called back into ChatAgent frank: 2 messages")
    rows = {(a["type"], a["id"]): a for a in state.actors_since(0)}
    assert rows[("ChatAgent", "frank")]["follow_up"] == "re-entered"


def test_step_settings_are_the_apps_env_or_its_defaults() -> None:
    assert step_settings("01_actor_timers", {}) == StepSettings(
        5, 60, {"ChatAgent": 3600, "FollowUpAgent": 3600}
    )
    quick = step_settings("04_runtime_config", {"QUICK_IDLE_TIMEOUT_SECONDS": "4"})
    assert (quick.timer_period, quick.idle_timeouts["QuickChatAgent"]) == (None, 4)


def test_metrics_are_summed_per_actor_type() -> None:
    text = "\n".join([
        "# HELP dapr_runtime_actor_timers ...",
        f"dapr_runtime_actor_timers{{{LABELS}}} 1",
        f'dapr_runtime_actor_timers_fired_total{{{LABELS},success="true"}} 4',
        f'dapr_runtime_actor_timers_fired_total{{{LABELS},success="false"}} 1',
        'dapr_runtime_actor_status_report_total{app_id="chat-agent",operation="send"} 9',
        'dapr_http_server_request_count{app_id="chat-agent"} 3',
    ])  # fmt: skip
    assert parse_metrics(text, releases.of("1.18.3")) == {
        "ChatAgent": {"timers": 1.0, "timers_fired_total": 4.0, "timers_fired_total failed": 1.0}
    }


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        # 1.14: a count of recordings, two per call, that never goes down: left out.
        ("1.14.4", {}),
        ("", {}),  # the release not known yet
        ("1.16.5", {"calls waiting for the actor lock": 0.0}),
        ("1.18.3", {"calls waiting for the actor lock": 0.0}),
    ],
)
def test_pending_actor_calls_is_shown_only_where_it_counts_waiting_calls(
    version: str, shown: dict[str, float]
) -> None:
    text = f"dapr_runtime_actor_pending_actor_calls{{{LABELS}}} 0"
    rel = releases.of(version) if version else None
    assert parse_metrics(text, rel) == ({"ChatAgent": shown} if shown else {})


def test_a_reminder_is_due_at_its_registered_time() -> None:
    record = {"registeredTime": "2026-01-01T10:00:30Z", "dueTime": "30s", "period": ""}
    assert reminder_due_at(record) == 1767261630.0


def test_failed_reads_say_which_part_and_keep_the_last_values() -> None:
    state = ConsoleState("01_actor_timers", StepSettings())
    state.set_metadata({"ChatAgent": 3}, "1.14.4", "placement: connected")
    state.set_source("sidecar", True)
    closed = netcheck.free_port()  # nothing listens there
    targets = Targets(
        dapr_url=f"http://127.0.0.1:{closed}",
        metrics_url=None,
        redis_host="127.0.0.1",
        redis_port=closed,
        app_id="chat-agent",
        processes=dict,
    )

    async def read_once() -> None:
        poller = Poller(state, targets)
        await poller.start()
        await poller.read_metadata()
        await poller.read_redis()
        await poller.stop()

    asyncio.run(read_once())
    summary = state.summary()
    assert summary["active_counts"] == {"ChatAgent": 3}, "a failed read must not read as zero"
    assert summary["sources"]["sidecar"]["ok"] is False
    assert f"127.0.0.1:{closed}/v1.0/metadata" in summary["sources"]["sidecar"]["detail"]
    assert summary["sources"]["redis"]["ok"] is False
    assert f"Redis at 127.0.0.1:{closed}" in summary["sources"]["redis"]["detail"]
    assert [e["kind"] for e in state.events_since(0)] == ["source down"]


def test_a_taken_port_is_a_clear_error() -> None:
    state = ConsoleState("01_actor_timers", StepSettings())
    targets = Targets("http://127.0.0.1:1", None, "127.0.0.1", 1, "chat-agent", dict)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"is port {port} in use\? .*--no-console"):
            ConsoleServer(state, targets, port).start()
