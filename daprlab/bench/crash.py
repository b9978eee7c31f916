"""What survives a crash: a burst of messages over many actors, SIGKILL of every process of the
stack at once (a power cut, an OOM kill), the stack again on the same state dir; then, actor by
actor, which answered messages the history still holds. A benchmark: it prints.

    uv run python -m daprlab.bench.crash [RUNS]

Runs each crash point (during the burst; just after the last answer) RUNS times (default 3)
with each Redis setting (daprlab/stack/redis_persistence.py), side by side. The end-to-end test
tests/runner/test_crash_e2e.py uses the same burst and count.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from daprlab.runtime import Runtime, ensure_runtime
from daprlab.stack import redis_persistence
from daprlab.stack.ports import ControlPorts, InstancePorts
from daprlab.stack.stack import Stack, StackConfig
from daprlab.wait import wait_for

STEP = "01_actor_timers"
ACTORS = 30
MESSAGES_PER_ACTOR = 2
WORKERS = 8
HTTP_TIMEOUT_SECONDS = 30
BURST_TIMEOUT_SECONDS = 120
# "During the burst": the crash comes once this many messages of the burst were answered.
DURING_AFTER_ANSWERS = ACTORS
DURING = "during the burst"
AFTER_LAST = "just after the last answer"
CRASH_POINTS = (DURING, AFTER_LAST)
DEFAULT_RUNS = 3


@dataclass
class Burst:
    """Messages sent to actors `<prefix>-1` .. `<prefix>-N`, and those answered 200."""

    prefix: str
    answered: dict[str, list[str]] = field(default_factory=dict)
    unanswered: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def actors(self) -> list[str]:
        return [f"{self.prefix}-{n}" for n in range(1, ACTORS + 1)]

    def answered_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.answered.values())

    def send(self, client: httpx.Client, actor: str, content: str) -> None:
        try:
            ok = client.post(f"/chat/{actor}", json={"content": content}).status_code == 200
        except httpx.HTTPError:  # the stack died under it: not answered
            ok = False
        with self._lock:
            (self.answered if ok else self.unanswered).setdefault(actor, []).append(content)


def run_burst(app_url: str, burst: Burst, done: threading.Event | None = None) -> Burst:
    """MESSAGES_PER_ACTOR rounds over ACTORS actors, WORKERS at a time; every message's content
    is unique (`<actor>: message <k>`), so a kept one can be told from a duplicate."""
    with (
        httpx.Client(base_url=app_url, timeout=HTTP_TIMEOUT_SECONDS) as client,
        ThreadPoolExecutor(WORKERS) as pool,
    ):
        for k in range(1, MESSAGES_PER_ACTOR + 1):
            for actor in burst.actors:
                pool.submit(burst.send, client, actor, f"{actor}: message {k}")
    if done is not None:
        done.set()
    return burst


def kept_messages(app_url: str, actors: list[str]) -> dict[str, list[str]]:
    """Each actor's user messages, as its history holds them after the restart."""
    kept = {}
    with httpx.Client(base_url=app_url, timeout=HTTP_TIMEOUT_SECONDS) as client:
        for actor in actors:
            resp = client.get(f"/chat/{actor}/history")
            resp.raise_for_status()
            messages = resp.json()["messages"]
            kept[actor] = [m["content"] for m in messages if m["role"] == "user"]
    return kept


@dataclass
class Tally:
    answered: int  # messages answered 200 before the crash
    kept: int  # of those, how many the history holds after the restart
    duplicated: int  # messages the history holds more than once
    kept_unanswered: int  # messages in flight at the crash that were kept anyway

    def line(self) -> str:
        return (
            f"kept {self.kept}/{self.answered} answered, {self.duplicated} duplicated, "
            f"{self.kept_unanswered} in flight kept"
        )


def tally(burst: Burst, kept: dict[str, list[str]]) -> Tally:
    answered = kept_count = duplicated = kept_unanswered = 0
    for actor in burst.actors:
        counts = Counter(kept.get(actor, []))
        duplicated += sum(1 for n in counts.values() if n > 1)
        for content in burst.answered.get(actor, []):
            answered += 1
            kept_count += counts[content] >= 1
        kept_unanswered += sum(counts[c] >= 1 for c in burst.unanswered.get(actor, []))
    return Tally(answered, kept_count, duplicated, kept_unanswered)


def burst_then_crash(app_url: str, crash: Callable[[], object], point: str, prefix: str) -> Burst:
    """A burst, and `crash()` at `point`: once DURING_AFTER_ANSWERS messages were answered, or
    as soon as the last one was."""
    burst = Burst(prefix)
    if point == AFTER_LAST:
        run_burst(app_url, burst)
        crash()
        return burst
    done = threading.Event()
    sender = threading.Thread(target=run_burst, args=(app_url, burst, done), daemon=True)
    sender.start()
    wait_for(
        lambda: burst.answered_count() >= DURING_AFTER_ANSWERS or done.is_set(),
        BURST_TIMEOUT_SECONDS,
        f"{DURING_AFTER_ANSWERS} answers",
        interval=0.005,
    )
    crash()
    sender.join(BURST_TIMEOUT_SECONDS)
    return burst


def _stack(runtime: Runtime, state_dir: Path, persistence: str) -> Stack:
    config = StackConfig(
        step=STEP,
        state_dir=state_dir,
        control_ports=ControlPorts.free(),
        instance_ports=[InstancePorts.free()],
        redis_persistence=persistence,
    )
    return Stack(config, runtime, lambda _name, _line: None)


def measure(runtime: Runtime, persistence: str, point: str, run: int) -> Tally:
    """One crash on a fresh state dir: burst, crash, restart, count."""
    with tempfile.TemporaryDirectory(prefix="daprlab-crash-") as tmp:
        first = _stack(runtime, Path(tmp), persistence)
        first.start()
        try:
            burst = burst_then_crash(first.app_url, first.crash, point, f"crash{run}")
        finally:
            first.stop()
        again = _stack(runtime, Path(tmp), persistence)
        again.start()
        try:
            return tally(burst, kept_messages(again.app_url, burst.actors))
        finally:
            again.stop()


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else DEFAULT_RUNS
    runtime = ensure_runtime(build=False)
    print(f"{ACTORS} actors x {MESSAGES_PER_ACTOR} messages, {WORKERS} at a time; SIGKILL of "
          "every process; the stack again on the same state dir")  # fmt: skip
    for point in CRASH_POINTS:
        for persistence in (redis_persistence.SNAPSHOTS, redis_persistence.FSYNC_ALWAYS):
            for run in range(1, runs + 1):
                result = measure(runtime, persistence, point, run)
                print(f"crash {point:<26} redis {persistence:<13} run {run}: {result.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
