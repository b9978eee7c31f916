"""`daprlab bench`: how fast the lab's chat path is, measured against a floor on this machine.

It starts everything it measures itself (daprlab/bench/targets.py): step stacks as `daprlab up`
runs them, one of them with the SDK's defaults (a new session per call to daprd), one on Redis'
old setting (snapshots, no fsync: what the default's durability costs), and the floor app (the
same chat route straight on Redis). wrk drives them, closed loop
(daprlab/bench/wrk_driver.py); the variants take turns in rounds (the order rotates and
reverses), so drift and other load on the machine hit each of them alike. CPU comes from
/proc/<pid>/stat before and after each run, memory from /proc/<pid>/status
(daprlab/bench/proc_sampling.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daprlab.bench import report
from daprlab.bench.measurements import (
    CHAT_STEP,
    COLD_START_RUNS,
    MEMORY_IDLE_TIMEOUT_SECONDS,
    MEMORY_SCAN_INTERVAL_SECONDS,
    REMINDER_STEP,
    REMINDER_TTL_SECONDS,
    TIMER_PERIOD_SECONDS,
    TIMER_STEP,
    TIMER_TICKS,
    TimedLog,
    measure_cold_start,
    measure_memory,
    measure_timers,
)
from daprlab.bench.targets import (
    discard,
    new_stack,
    pids_of,
    prefill,
    stacks_started,
    start_floor,
)
from daprlab.bench.wrk_driver import Run, Target, Wrk
from daprlab.runtime import Runtime
from daprlab.stack import redis_persistence
from daprlab.stack.process import ManagedProcess
from daprlab.stack.stack import Stack

Say = Callable[[str], None]

CONCURRENCY = (1, 16)
# The app's switch to the SDK's defaults: a new aiohttp session per call to daprd instead of the
# lab's keep-alive session (lab_plumbing/ reads it).
SIDECAR_CONNECTIONS_ENV = "SIDECAR_CONNECTIONS"
PER_CALL = "per-call"


@dataclass(frozen=True)
class Plan:
    rounds: int
    warmup_seconds: int
    measure_seconds: int
    pool: int
    prefill_messages: int
    targets: tuple[str, ...]  # keys of report.TARGET_TITLES
    with_extras: bool  # memory, timers, reminders and cold start


FULL = Plan(4, 1, 6, 200, 10, ("floor", "warm", "snapshots", "sdk", "new"), True)
QUICK = Plan(2, 1, 2, 32, 2, ("floor", "warm", "snapshots", "sdk"), False)


def extra_stacks(
    runtime: Runtime, scratch: Path, timer_log: TimedLog, reminder_log: TimedLog
) -> tuple[Stack, Stack, Stack]:
    """The stacks of the extras: memory (step 04), timers (step 01), reminders (step 02)."""
    memory = new_stack(
        CHAT_STEP, runtime, scratch, "memory", discard,
        {
            "ACTOR_IDLE_TIMEOUT_SECONDS": str(MEMORY_IDLE_TIMEOUT_SECONDS),
            "ACTOR_SCAN_INTERVAL_SECONDS": str(MEMORY_SCAN_INTERVAL_SECONDS),
        },
    )  # fmt: skip
    timers = new_stack(
        TIMER_STEP, runtime, scratch, "timers", timer_log.sink,
        {
            "TIMER_PERIOD_SECONDS": str(TIMER_PERIOD_SECONDS),
            "TIMER_TTL_SECONDS": str(TIMER_TICKS * TIMER_PERIOD_SECONDS),
        },
    )  # fmt: skip
    reminders = new_stack(
        REMINDER_STEP, runtime, scratch, "reminders", reminder_log.sink,
        {"HISTORY_TTL_SECONDS": str(REMINDER_TTL_SECONDS)},
    )  # fmt: skip
    return memory, timers, reminders


def round_order(plan: Plan, number: int) -> list[str]:
    """The targets in round `number`'s order: rotated by one each round, every other reversed."""
    shift = number % len(plan.targets)
    order = list(plan.targets[shift:]) + list(plan.targets[:shift])
    if number % 2:
        order.reverse()
    return order


def bench(runtime: Runtime, quick: bool, say: Say) -> list[str]:
    """Run the benchmark; return the report, whose last line is the chat-vs-floor summary."""
    plan = QUICK if quick else FULL
    load_before = os.getloadavg()
    extras: list[str] = []
    with tempfile.TemporaryDirectory(prefix="daprlab-bench-") as tmp:
        scratch = Path(tmp)
        wrk = Wrk(scratch)
        chat = new_stack(CHAT_STEP, runtime, scratch, "chat", discard)
        stacks = [chat]
        if "sdk" in plan.targets:
            sdk = new_stack(
                CHAT_STEP, runtime, scratch, "sdk-defaults", discard,
                {SIDECAR_CONNECTIONS_ENV: PER_CALL},
            )  # fmt: skip
            stacks.append(sdk)
        if "snapshots" in plan.targets:  # what durability costs: Redis' old setting
            old = new_stack(
                CHAT_STEP, runtime, scratch, "redis-snapshots", discard,
                persistence=redis_persistence.SNAPSHOTS,
            )  # fmt: skip
            stacks.append(old)
        timer_log, reminder_log = TimedLog(), TimedLog()
        if plan.with_extras:
            memory, timers, reminders = extra_stacks(runtime, scratch, timer_log, reminder_log)
            stacks += [memory, timers, reminders]
        say(f"starting {len(stacks)} stack(s) and the floor app")
        floor: ManagedProcess | None = None
        with stacks_started(stacks):
            try:
                pids = pids_of(chat)
                floor, floor_target = start_floor(chat.redis_port, pids["redis"])
                targets = {
                    "floor": floor_target,
                    "warm": Target("warm", chat.app_url, "pool", pids),
                    "new": Target("new", chat.app_url, "unique", pids),
                }
                if "snapshots" in plan.targets:
                    targets["snapshots"] = Target("snapshots", old.app_url, "pool", pids_of(old))
                if "sdk" in plan.targets:
                    targets["sdk"] = Target("sdk", sdk.app_url, "pool", pids_of(sdk))
                say(f"pre-filling {plan.pool} conversations per pool")
                for name in plan.targets:
                    if targets[name].mode == "pool":
                        prefill(targets[name], plan.pool, plan.prefill_messages)
                runs: list[Run] = []
                for number in range(plan.rounds):
                    order = round_order(plan, number)
                    say(f"round {number + 1}/{plan.rounds}: {', '.join(order)}")
                    for name in order:
                        for concurrency in CONCURRENCY:
                            runs.append(
                                wrk.measure(
                                    targets[name],
                                    concurrency,
                                    number,
                                    plan.pool,
                                    plan.warmup_seconds,
                                    plan.measure_seconds,
                                )
                            )
                if plan.with_extras:
                    say("memory: 1,000 actors, then their idle deactivation")
                    extras += report.memory_lines(measure_memory(memory))
                    say("timer ticks and reminder fires while wrk sends chats at 16")
                    late = measure_timers(timers, timer_log, reminders, reminder_log, wrk)
                    extras += report.lateness_lines(late)
            finally:
                if floor is not None:
                    floor.stop()
        if plan.with_extras:
            say(f"cold start: {CHAT_STEP} alone, {COLD_START_RUNS} times")
            extras.append(report.cold_start_line(measure_cold_start(runtime, scratch)))
    load_after = os.getloadavg()
    return [
        *report.table(runs, plan.targets),
        "",
        *extras,
        f"{plan.rounds} rounds of {plan.measure_seconds} s per variant after "
        f"{plan.warmup_seconds} s warm-up; medians over rounds; {os.cpu_count()} cores; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after",
        *report.ratio_lines(runs, plan.targets),
    ]
