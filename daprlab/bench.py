"""`daprlab bench`: how fast the lab's chat path is, measured against a floor on this machine.

It starts everything it measures itself: step stacks as `daprlab up` runs them (free ports, a
private Redis each) and the floor app (daprlab/floor_app.py: the same chat route straight on
Redis). wrk drives them, closed loop; the variants take turns in rounds (the order rotates and
reverses), so drift and other load on the machine hit each of them alike. CPU comes from
/proc/<pid>/stat before and after each run, memory from /proc/<pid>/status.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from daprlab import netcheck
from daprlab.paths import REPO_ROOT
from daprlab.runtime import Runtime
from daprlab.stack import (
    LOOPBACK,
    ControlPorts,
    InstancePorts,
    ManagedProcess,
    Stack,
    StackConfig,
    StackError,
    uvicorn_argv,
)
from daprlab.wait import wait_for

Say = Callable[[str], None]

CHAT_STEP = "04_runtime_config"  # the base chat path: no timer or reminder per message
TIMER_STEP = "01_actor_timers"
REMINDER_STEP = "02_actor_reminders"
FLOOR_APP = "daprlab.floor_app:app"
WRK_INSTALL_FIX = "install it (Debian/Ubuntu: `sudo apt-get install wrk`)"
CHAT_PATH = "/chat/"
BODY = b'{"content":"hi"}'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HTTP_TIMEOUT_SECONDS = 30
WRK_TIMEOUT = "10s"
CONCURRENCY = (1, 16)
START_TIMEOUT_SECONDS = 60
# Timers: 20 actors x 10 ticks of 1 s, registered while wrk keeps the step 01 app busy.
TIMER_ACTORS = 20
TIMER_PERIOD_SECONDS = 1
TIMER_TICKS = 10
# As many actors as connections: each chat re-registers its actor's timer, ticking too.
TIMER_LOAD_POOL = 16
LOAD_ACTIVATED = re.compile(r"ChatAgent p\d+ activated")
TICK_LINE = re.compile(r"timer tick (\d+): ChatAgent (t\d+) has")
# Reminders: 20 one-shot reminders due REMINDER_TTL_SECONDS after their message.
REMINDER_ACTORS = 20
REMINDER_TTL_SECONDS = 5
EXPIRED_LINE = re.compile(r"history expired: ChatAgent (r\d+) ")
# Memory: a first wave warms daprd's one-off pools; the second is what is measured.
MEMORY_WARMUP_ACTORS = 200
MEMORY_ACTORS = 1000
MEMORY_IDLE_TIMEOUT_SECONDS = 30
MEMORY_SCAN_INTERVAL_SECONDS = 1
COLD_START_RUNS = 3

# wrk's script: each request goes to a random id of a pre-filled pool, or to a new id.
WRK_SCRIPT = r"""
local prefix, mode, pool, tag
local counter = 0
function init(args)
  prefix, mode, pool, tag = args[1], args[2], tonumber(args[3]), args[4]
  math.randomseed(os.time())
end
wrk.method = "POST"
wrk.body = '{"content":"hi"}'
wrk.headers["Content-Type"] = "application/json"
function request()
  local id
  if mode == "pool" then
    id = "p" .. math.random(0, pool - 1)
  else
    counter = counter + 1
    id = tag .. "n" .. counter
  end
  return wrk.format(nil, prefix .. id)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Plan:
    rounds: int
    warmup_seconds: int
    measure_seconds: int
    pool: int
    prefill_messages: int
    targets: tuple[str, ...]
    extras: bool  # memory, timers, reminders and cold start


FULL = Plan(4, 1, 6, 200, 10, ("floor", "warm", "new"), True)
QUICK = Plan(2, 1, 2, 32, 2, ("floor", "warm"), False)
TARGET_TITLES = {"floor": "floor", "warm": "warm actor", "new": "new actor"}


# ---- /proc ------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = values[3], values[4]
    return (sum(values[:8]) - idle - iowait) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise StackError(f"no VmRSS for pid {pid}")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- one wrk run ------------------------------------------------------------------------------
@dataclass
class Run:
    target: str
    concurrency: int
    round: int
    chats: int
    seconds: float
    errors: int
    p50: float  # ms
    p90: float
    p99: float
    cpu_ms_per_chat: dict[str, float]

    @property
    def rate(self) -> float:
        return self.chats / self.seconds


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:port
    mode: str  # "pool" or "unique"
    pids: dict[str, int]  # what to charge CPU to: app, daprd, redis

    @property
    def url(self) -> str:
        """The chat URL up to the id."""
        return f"{self.base}{CHAT_PATH}"


class Wrk:
    def __init__(self, scratch: Path) -> None:
        binary = shutil.which("wrk")
        if binary is None:
            raise StackError(f"the load generator wrk is not installed: {WRK_INSTALL_FIX}")
        self.binary = binary
        self.script = scratch / "chat.lua"
        self.script.write_text(WRK_SCRIPT)
        self.tags = 0

    def argv(self, target: Target, concurrency: int, seconds: int, pool: int) -> list[str]:
        self.tags += 1  # new-actor ids never repeat across runs
        return [
            self.binary, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT,
            "-s", str(self.script), target.base, "--",
            CHAT_PATH, target.mode, str(pool), f"b{os.getpid()}x{self.tags}",
        ]  # fmt: skip

    def run(self, target: Target, concurrency: int, seconds: int, pool: int) -> dict:
        out = subprocess.run(
            self.argv(target, concurrency, seconds, pool),
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
        )
        summary = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
        if out.returncode != 0 or summary is None:
            raise StackError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
        return json.loads(summary)

    def measure(
        self, target: Target, concurrency: int, plan: Plan, round_number: int, pool: int
    ) -> Run:
        self.run(target, concurrency, plan.warmup_seconds, pool)
        pids = dict(target.pids)
        before = {role: cpu_seconds(pid) for role, pid in pids.items()}
        wrk_before, own_before, busy_before = (
            children_cpu_seconds(),
            own_cpu_seconds(),
            machine_busy_seconds(),
        )
        result = self.run(target, concurrency, plan.measure_seconds, pool)
        used = {role: cpu_seconds(pid) - before[role] for role, pid in pids.items()}
        used["wrk"] = children_cpu_seconds() - wrk_before
        used["runner"] = own_cpu_seconds() - own_before
        tracked = sum(used.values())
        used["other"] = max(0.0, machine_busy_seconds() - busy_before - tracked)
        chats = max(1, int(result["requests"]))
        return Run(
            target=target.name,
            concurrency=concurrency,
            round=round_number,
            chats=chats,
            seconds=result["duration_us"] / 1e6,
            errors=int(result["errors"]),
            p50=result["p50_us"] / 1000,
            p90=result["p90_us"] / 1000,
            p99=result["p99_us"] / 1000,
            cpu_ms_per_chat={role: 1000 * s / chats for role, s in used.items()},
        )


# ---- HTTP from the bench itself (pre-fill, activation, timers) ---------------------------------
async def _post_all(urls: list[str], concurrency: int) -> list[tuple[float, float, int]]:
    """POST the chat body to every url, `concurrency` at a time; (sent, answered, status) each."""
    results: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * len(urls)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(urls)):
        queue.put_nowait(index)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                sent = time.time()
                async with session.post(urls[index], data=BODY) as resp:
                    await resp.read()
                    results[index] = (sent, time.time(), resp.status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def post_all(urls: list[str], concurrency: int = 16) -> list[tuple[float, float, int]]:
    try:
        results = asyncio.run(_post_all(urls, concurrency))
    except (aiohttp.ClientError, TimeoutError) as err:
        raise StackError(f"a chat to {urls[0].rsplit('/', 1)[0]}/... failed: {err!r}") from err
    failed = [(url, r[2]) for url, r in zip(urls, results, strict=True) if r[2] != 200]
    if failed:
        raise StackError(f"{len(failed)} of {len(urls)} chats failed, e.g. {failed[0]}")
    return results


# ---- what runs ----------------------------------------------------------------------------------
@dataclass
class TimedLog:
    """Every line of a stack's processes, with the time it was read."""

    lines: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sink(self, process: str, line: str) -> None:
        with self.lock:
            self.lines.append((time.time(), process, line))

    def matching(self, process: str, pattern: re.Pattern[str]) -> list[tuple[float, re.Match]]:
        with self.lock:
            found = [(t, pattern.search(ln)) for t, p, ln in self.lines if p == process]
        return [(t, m) for t, m in found if m]


def discard(_process: str, _line: str) -> None:
    """The chat stack's lines: kept by each process (for errors), not printed."""


def new_stack(
    step: str, runtime: Runtime, scratch: Path, name: str, sink: Callable[[str, str], None],
    app_env: dict[str, str] | None = None,
) -> Stack:  # fmt: skip
    config = StackConfig(
        step=step,
        state_dir=scratch / name,
        control_ports=ControlPorts.free(),
        instance_ports=[InstancePorts.free()],
        app_env=dict(app_env or {}),
    )
    return Stack(config, runtime, sink)


def pids_of(stack: Stack) -> dict[str, int]:
    inst = stack.instances[0]
    assert inst.app and inst.daprd and inst.app.pid and inst.daprd.pid
    redis = stack.control["redis"].pid
    assert redis is not None
    return {"app": inst.app.pid, "daprd": inst.daprd.pid, "redis": redis}


def start_floor(redis_port: int, redis_pid: int) -> tuple[ManagedProcess, Target]:
    port = netcheck.free_port()
    argv = uvicorn_argv(FLOOR_APP, REPO_ROOT, port, os.environ.get("LOG_LEVEL", ""))
    floor = ManagedProcess("floor", argv, discard, env={"FLOOR_REDIS_PORT": str(redis_port)})
    floor.start()
    url = f"http://{LOOPBACK}:{port}"

    def up() -> bool:
        if not floor.alive:
            tail = "\n".join(list(floor.lines)[-15:])
            raise StackError(f"the floor app {floor.exit_reason()}:\n{tail}")
        return netcheck.http_status(f"{url}/openapi.json") == 200

    wait_for(up, START_TIMEOUT_SECONDS, "the floor app")
    assert floor.pid is not None
    return floor, Target("floor", url, "pool", {"app": floor.pid, "redis": redis_pid})


def prefill(target: Target, plan: Plan) -> None:
    """Every pool id gets its history to the state the measured chats see."""
    urls = [f"{target.url}p{i}" for i in range(plan.pool)] * plan.prefill_messages
    post_all(urls)


# ---- the extras: memory, timers, reminders, cold start ------------------------------------------
def active_actors(stack: Stack) -> int:
    metadata = netcheck.http_json(f"{stack.dapr_url}/v1.0/metadata") or {}
    entries = metadata.get("actorRuntime", {}).get("activeActors", [])
    return sum(int(e.get("count", 0)) for e in entries if e["type"] == "ChatAgent")


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
        target=wrk.run, args=(load, 16, load_seconds, TIMER_LOAD_POOL), daemon=True
    )
    loader.start()
    wait_for(
        lambda: timer_log.matching("app", LOAD_ACTIVATED), START_TIMEOUT_SECONDS, "the chat load"
    )
    reminder_ids = [f"r{i}" for i in range(REMINDER_ACTORS)]
    sent = post_all([f"{reminders.app_url}/chat/{r}" for r in reminder_ids])
    due = {r: s + REMINDER_TTL_SECONDS for r, (s, _, _) in zip(reminder_ids, sent, strict=True)}
    first_ticks = register_timers(timers)

    def ticks() -> list[float] | None:
        late = [
            t - (first_ticks[m[2]] + (int(m[1]) - 1) * TIMER_PERIOD_SECONDS)
            for t, m in timer_log.matching("app", TICK_LINE)
            if m[2] in first_ticks and int(m[1]) <= TIMER_TICKS
        ]
        return late if len(late) >= TIMER_ACTORS * TIMER_TICKS else None

    tick_lateness = wait_for(ticks, load_seconds + START_TIMEOUT_SECONDS, "200 timer ticks")

    def fired() -> list[tuple[float, re.Match]] | None:
        found = reminder_log.matching("app", EXPIRED_LINE)
        return found if len(found) >= len(due) else None

    fires = wait_for(fired, START_TIMEOUT_SECONDS, "every reminder to fire")
    loader.join()
    fire_lateness = [t - due[m[1]] for t, m in fires]
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


# ---- the table ----------------------------------------------------------------------------------
def med(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def paired(runs: list[Run], metric: Callable[[Run], float], concurrency: int) -> float:
    """The median over rounds of warm / floor, each round's pair measured in that round."""
    by_round: dict[int, dict[str, Run]] = {}
    for run in runs:
        if run.concurrency == concurrency:
            by_round.setdefault(run.round, {})[run.target] = run
    return statistics.median(
        metric(pair["warm"]) / metric(pair["floor"]) for pair in by_round.values()
    )


NOT_MEASURED = "-"


def latencies(runs: list[Run], *keys: str) -> str:
    return " / ".join(f"{med(runs, lambda r, k=k: getattr(r, k)):.2f}" for k in keys)


def cpu(runs: list[Run], *roles: str) -> str:
    return " / ".join(
        f"{med(runs, lambda r, k=k: r.cpu_ms_per_chat[k]):.2f}"
        if k in runs[0].cpu_ms_per_chat
        else NOT_MEASURED
        for k in roles
    )


ALL_RUNS = 0  # a row about every run of a target, whatever its concurrency
TABLE_ROWS: list[tuple[str, int, Callable[[list[Run]], str]]] = [
    ("1 at a time: p50 / p90 / p99 ms", 1, lambda rs: latencies(rs, "p50", "p90", "p99")),
    ("16 at a time: chats/s", 16, lambda rs: f"{med(rs, lambda r: r.rate):.0f}"),
    ("16 at a time: p50 / p99 ms", 16, lambda rs: latencies(rs, "p50", "p99")),
    ("CPU ms per chat at 16: app", 16, lambda rs: cpu(rs, "app")),
    ("CPU ms per chat at 16: daprd", 16, lambda rs: cpu(rs, "daprd")),
    ("CPU ms per chat at 16: Redis", 16, lambda rs: cpu(rs, "redis")),
    ("CPU ms/chat at 16: wrk / runner / rest", 16, lambda rs: cpu(rs, "wrk", "runner", "other")),
    ("failed requests, all runs", ALL_RUNS, lambda rs: str(sum(r.errors for r in rs))),
]  # fmt: skip


def table(runs: list[Run], plan: Plan) -> list[str]:
    """One markdown table: a column per target, medians over the rounds."""
    names = list(TARGET_TITLES)
    lines = [
        "| | " + " | ".join(TARGET_TITLES.values()) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for title, concurrency, show in TABLE_ROWS:
        cells = []
        for name in names:
            chosen = [
                r for r in runs if r.target == name and concurrency in (ALL_RUNS, r.concurrency)
            ]
            cells.append(show(chosen) if chosen and name in plan.targets else NOT_MEASURED)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


# ---- the whole run ----------------------------------------------------------------------------
@contextmanager
def stacks_started(stacks: list[Stack]) -> Iterator[None]:
    """Start the stacks one after the other; stop every one of them at the end, whatever happens.

    From this thread: a child dies with the thread that started it (daprlab/lifeline.py), so a
    pool's short-lived threads would take the stacks down with them."""
    try:
        for stack in stacks:
            stack.start()
        yield
    finally:
        for stack in stacks:
            stack.stop()


def bench(runtime: Runtime, quick: bool, say: Say) -> list[str]:
    """Run the benchmark; return the report, whose last line is the chat-vs-floor summary."""
    plan = QUICK if quick else FULL
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="daprlab-bench-") as tmp:
        scratch = Path(tmp)
        wrk = Wrk(scratch)
        chat = new_stack(CHAT_STEP, runtime, scratch, "chat", discard)
        stacks = [chat]
        timer_log, reminder_log = TimedLog(), TimedLog()
        if plan.extras:
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
                say(f"pre-filling {plan.pool} conversations per pool")
                prefill(targets["floor"], plan)
                prefill(targets["warm"], plan)
                runs: list[Run] = []
                for number in range(plan.rounds):
                    order = list(plan.targets[number % len(plan.targets) :])
                    order += plan.targets[: number % len(plan.targets)]
                    if number % 2:
                        order.reverse()
                    say(f"round {number + 1}/{plan.rounds}: {', '.join(order)}")
                    for name in order:
                        for concurrency in CONCURRENCY:
                            runs.append(
                                wrk.measure(targets[name], concurrency, plan, number, plan.pool)
                            )
                extras: list[str] = []
                if plan.extras:
                    say("memory: 1,000 actors, then their idle deactivation")
                    mem = measure_memory(memory)
                    say("timer ticks and reminder fires while wrk sends chats at 16")
                    late = measure_timers(timers, timer_log, reminders, reminder_log, wrk)
                    extras += [
                        f"memory per active actor ({mem['actors']} actors after "
                        f"{MEMORY_WARMUP_ACTORS} warm-up, RSS): app {mem['app_kib']:.2f} KiB + "
                        f"daprd {mem['daprd_kib']:.2f} KiB = "
                        f"{mem['app_kib'] + mem['daprd_kib']:.2f} KiB",
                        f"after their idle deactivation (all 0 active): app RSS "
                        f"{mem['app_after_mib']:+.2f} MiB, daprd {mem['daprd_after_mib']:+.2f} MiB",
                        f"timer ticks late ({late['ticks']:.0f} ticks, {TIMER_ACTORS} actors, "
                        f"{TIMER_STEP}, chats at 16 meanwhile): p50 {late['tick_p50']:.1f} ms, "
                        f"p99 {late['tick_p99']:.1f} ms",
                        f"reminder fires late ({REMINDER_ACTORS} one-shot, {REMINDER_STEP}, "
                        f"from the message's send time): p50 {late['fire_p50']:.0f} ms, "
                        f"max {late['fire_max']:.0f} ms",
                    ]
            finally:
                if floor is not None:
                    floor.stop()
        if plan.extras:
            say(f"cold start: {CHAT_STEP} alone, {COLD_START_RUNS} times")
            cold = measure_cold_start(runtime, scratch)
            extras.append(
                f"cold start, stack start to ready ({CHAT_STEP}): median "
                f"{statistics.median(cold):.2f} s ({min(cold):.2f}-{max(cold):.2f})"
            )
    load_after = os.getloadavg()
    p50_ratio = paired(runs, lambda r: r.p50, 1)
    rate_ratio = paired(runs, lambda r: r.rate, 16)
    return [
        *table(runs, plan),
        "",
        *extras,
        f"{plan.rounds} rounds of {plan.measure_seconds} s per variant after "
        f"{plan.warmup_seconds} s warm-up; medians over rounds; {os.cpu_count()} cores; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after",
        f"chat vs floor: p50 x{p50_ratio:.2f}, throughput x{rate_ratio:.2f}",
    ]
