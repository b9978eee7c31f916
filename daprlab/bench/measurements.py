"""The bench's measurements beyond wrk's chats: memory per active actor, timer and reminder
lateness under load, and cold start. Each reads the app's log lines through daprlab/loglines.py."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from daprlab import loglines, netcheck
from daprlab.bench.proc_sampling import rss_kib
from daprlab.bench.targets import START_TIMEOUT_SECONDS, discard, new_stack, pids_of, post_all
from daprlab.bench.wrk_driver import Target, Wrk
from daprlab.runtime import Runtime
from daprlab.stack.process import StackError
from daprlab.stack.stack import Stack
from daprlab.wait import wait_for

CHAT_STEP = "04_runtime_config"  # the base chat path: no timer or reminder per message
TIMER_STEP = "01_actor_timers"
REMINDER_STEP = "02_actor_reminders"
ACTOR_TYPE = "ChatAgent"
# Timers: 20 actors x 10 ticks of 1 s, registered while wrk keeps the step 01 app busy.
TIMER_ACTORS = 20
TIMER_PERIOD_SECONDS = 1
TIMER_TICKS = 10
# As many actors as connections: each chat re-registers its actor's timer, ticking too.
TIMER_LOAD_POOL = 16
TIMER_LOAD_CONCURRENCY = 16
# wrk's pool ids (daprlab/bench/wrk_driver.py's script): p0, p1, ...
LOAD_ID_PREFIX = "p"
# Reminders: 20 one-shot reminders due REMINDER_TTL_SECONDS after their message.
REMINDER_ACTORS = 20
REMINDER_TTL_SECONDS = 5
# Memory: a first wave warms daprd's one-off pools; the second is what is measured.
MEMORY_WARMUP_ACTORS = 200
MEMORY_ACTORS = 1000
MEMORY_IDLE_TIMEOUT_SECONDS = 30
MEMORY_SCAN_INTERVAL_SECONDS = 1
COLD_START_RUNS = 3


@dataclass
class TimedLog:
    """Every line of a stack's processes, with the time it was read."""

    lines: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sink(self, process: str, line: str) -> None:
        with self.lock:
            self.lines.append((time.time(), process, line))

    def matching(self, process: str, kind: str) -> list[tuple[float, re.Match]]:
        """The app lines of `process` that are loglines.APP_PATTERNS[kind], with their time."""
        with self.lock:  # copied, then read outside the lock: the sink never waits on a scan
            lines = list(self.lines)
        found = [(t, loglines.app_message(kind, ln)) for t, p, ln in lines if p == process]
        return [(t, m) for t, m in found if m]


def active_actors(stack: Stack) -> int:
    metadata = netcheck.http_json(f"{stack.dapr_url}/v1.0/metadata") or {}
    entries = metadata.get("actorRuntime", {}).get("activeActors", [])
    return sum(int(e.get("count", 0)) for e in entries if e["type"] == ACTOR_TYPE)


def measure_memory(stack: Stack) -> dict[str, float]:
    pids = pids_of(stack)
    app, daprd = pids["app"], pids["daprd"]
    url = f"{stack.app_url}/chat/"
    post_all([f"{url}w{i}" for i in range(MEMORY_WARMUP_ACTORS)])
    before_active = wait_for(
        lambda: (active := active_actors(stack)) >= MEMORY_WARMUP_ACTORS and active,
        START_TIMEOUT_SECONDS,
        "the warm-up actors to be active",
    )
    app0, daprd0 = rss_kib(app), rss_kib(daprd)
    post_all([f"{url}m{i}" for i in range(MEMORY_ACTORS)])
    active = active_actors(stack)
    app1, daprd1 = rss_kib(app), rss_kib(daprd)
    wait_for(
        lambda: active_actors(stack) == 0,
        MEMORY_IDLE_TIMEOUT_SECONDS + START_TIMEOUT_SECONDS,
        "every actor to be deactivated",
        interval=0.5,
    )
    app2, daprd2 = rss_kib(app), rss_kib(daprd)
    added = max(1, active - before_active)
    return {
        "actors": added,
        "app_kib": (app1 - app0) / added,
        "daprd_kib": (daprd1 - daprd0) / added,
        "app_after_mib": (app2 - app1) / 1024,
        "daprd_after_mib": (daprd2 - daprd1) / 1024,
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def register_timers(stack: Stack) -> dict[str, float]:
    """Start one timer per actor; its first tick is due on the whole second after registering.

    A registration whose request spans a whole second is ambiguous; that actor is left to tick
    and a fresh id is registered instead.
    """
    first_ticks: dict[str, float] = {}
    attempt = 0
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while len(first_ticks) < TIMER_ACTORS and time.monotonic() < deadline:
        missing = TIMER_ACTORS - len(first_ticks)
        ids = [f"t{attempt * TIMER_ACTORS + i}" for i in range(missing)]
        attempt += 1
        for actor, (sent, answered, _) in zip(
            ids, post_all([f"{stack.app_url}/chat/{a}" for a in ids]), strict=True
        ):
            if int(sent) == int(answered):
                first_ticks[actor] = float(int(sent) + TIMER_PERIOD_SECONDS)
    if len(first_ticks) < TIMER_ACTORS:
        raise StackError("could not register the timers: the app answers too slowly")
    return first_ticks


def measure_timers(
    timers: Stack, timer_log: TimedLog, reminders: Stack, reminder_log: TimedLog, wrk: Wrk
) -> dict[str, float]:
    """Timer and reminder lateness while wrk sends chats at 16 to the step 01 app."""
    load = Target("load", timers.app_url, "pool", {})
    load_seconds = TIMER_TICKS * TIMER_PERIOD_SECONDS + 6
    loader = threading.Thread(
        target=wrk.run,
        args=(load, TIMER_LOAD_CONCURRENCY, load_seconds, TIMER_LOAD_POOL),
        daemon=True,
    )
    loader.start()
    wait_for(
        lambda: [
            m
            for _, m in timer_log.matching("app", "activated")
            if m["type"] == ACTOR_TYPE and m["id"].startswith(LOAD_ID_PREFIX)
        ],
        START_TIMEOUT_SECONDS,
        "the chat load",
    )
    reminder_ids = [f"r{i}" for i in range(REMINDER_ACTORS)]
    sent = post_all([f"{reminders.app_url}/chat/{r}" for r in reminder_ids])
    due = {r: s + REMINDER_TTL_SECONDS for r, (s, _, _) in zip(reminder_ids, sent, strict=True)}
    first_ticks = register_timers(timers)

    def ticks() -> list[float] | None:
        late = [
            t - (first_ticks[m["id"]] + (int(m["tick"]) - 1) * TIMER_PERIOD_SECONDS)
            for t, m in timer_log.matching("app", "timer tick")
            if m["type"] == ACTOR_TYPE and m["id"] in first_ticks and int(m["tick"]) <= TIMER_TICKS
        ]
        return late if len(late) >= TIMER_ACTORS * TIMER_TICKS else None

    tick_lateness = wait_for(ticks, load_seconds + START_TIMEOUT_SECONDS, "200 timer ticks")

    def fired() -> list[tuple[float, re.Match]] | None:
        found = reminder_log.matching("app", "reminder fired")
        return found if len(found) >= len(due) else None

    fires = wait_for(fired, START_TIMEOUT_SECONDS, "every reminder to fire")
    loader.join()
    fire_lateness = [t - due[m["id"]] for t, m in fires if m["id"] in due]
    return {
        "tick_p50": 1000 * percentile(tick_lateness, 50),
        "tick_p99": 1000 * percentile(tick_lateness, 99),
        "ticks": len(tick_lateness),
        "fire_p50": 1000 * percentile(fire_lateness, 50),
        "fire_max": 1000 * max(fire_lateness),
    }


def measure_cold_start(runtime: Runtime, scratch: Path) -> list[float]:
    seconds = []
    for number in range(COLD_START_RUNS):
        stack = new_stack(CHAT_STEP, runtime, scratch, f"cold{number}", discard)
        started = time.monotonic()
        try:
            stack.start()
            seconds.append(time.monotonic() - started)
        finally:
            stack.stop()
    return seconds
