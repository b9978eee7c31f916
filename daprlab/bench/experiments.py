"""The figures EXPERIMENTS.md closes with, measured on the real stack (a benchmark: it prints).

    uv run python -m daprlab.bench.experiments

1. The delay a 3-second Redis pause (SIGSTOP) adds to a chat, with components/resiliency.yaml.
2. The time the survivors take to serve every actor of a replica killed with SIGKILL: from the
   kill until each of its conversations answers through replica 1 (median of 5).
3. How late a moved actor's reminder (step 02) fires after its due time, against the same for
   actors that did not move.
"""

from __future__ import annotations

import signal
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from daprlab import loglines
from daprlab.runtime import choose_runtime
from daprlab.stack.ports import InstancePorts
from daprlab.stack.process import StackError
from daprlab.stack.stack import Stack, StackConfig
from daprlab.wait import wait_for

STEP = "02_actor_reminders"
REPLICAS = 3
ACTORS_PER_ROUND = 30
ROUNDS = 5
PAUSE_SECONDS = 3
PAUSES = 3
HISTORY_TTL_SECONDS = 15
SLACK_SECONDS = 60
POLL_SECONDS = 0.05
HISTORY_TIMEOUT_SECONDS = 5


class Timeline:
    """Every output line of the stack, with the time it arrived."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def sink(self, process: str, line: str) -> None:
        with self._lock:
            self.lines.append((time.time(), process, line))

    def since(self, start: float) -> list[tuple[float, str, str]]:
        with self._lock:
            return [entry for entry in self.lines if entry[0] >= start]


def chat(client: httpx.Client, actor: str, content: str) -> float:
    started = time.monotonic()
    reply = client.post(f"/chat/{actor}", json={"content": content})
    if reply.status_code != 200:
        raise StackError(f"a chat to {actor} answered {reply.status_code}: {reply.text}")
    return time.monotonic() - started


def pause_delay(stack: Stack, client: httpx.Client) -> tuple[float, list[float]]:
    """(a normal chat's median, each chat sent as Redis freezes for PAUSE_SECONDS)."""
    chat(client, "bench-pause", "warm up")  # activated: its history is cached in the actor
    normal = statistics.median(chat(client, "bench-pause", "normal") for _ in range(5))
    paused = []
    redis = stack.control["redis"]
    for _ in range(PAUSES):
        redis.signal(signal.SIGSTOP)
        resume = threading.Timer(PAUSE_SECONDS, redis.signal, (signal.SIGCONT,))
        resume.start()
        paused.append(chat(client, "bench-pause", "during the pause"))
        resume.join()
    return normal, paused


def wait_for_dissemination(timeline: Timeline, since: float, streams: int) -> None:
    def done() -> bool:
        return any(
            process == "placement"
            and (m := loglines.DISSEMINATED.search(line))
            and int(m["streams"]) == streams
            for _, process, line in timeline.since(since)
        )

    wait_for(done, SLACK_SECONDS, f"placement to disseminate a table of {streams} hosts")


def failover_round(
    stack: Stack, client: httpx.Client, timeline: Timeline, round_number: int
) -> tuple[float, dict[str, str]]:
    """Kill replica 2; (seconds until all its actors answer elsewhere, their expiry times)."""
    posted = time.time()
    actors = [f"bench-{round_number}-{i}" for i in range(ACTORS_PER_ROUND)]
    for actor in actors:
        chat(client, actor, "hi")
    second = stack.instances[1]
    moved = {
        m["id"]
        for _, process, line in timeline.since(posted)
        if process == "app-2"
        and (m := loglines.app_message("activated", line))
        and m["id"] in actors
    }
    if not moved:
        raise StackError("replica 2 hosts none of this round's actors: try more actors per round")
    killed = time.monotonic()
    for proc in (second.daprd, second.app):
        assert proc is not None
        proc.signal(signal.SIGKILL)
    pending = set(moved)

    def taken_over() -> bool:
        for actor in list(pending):
            resp = client.get(f"/chat/{actor}/history", timeout=HISTORY_TIMEOUT_SECONDS)
            if resp.status_code == 200 and resp.json()["messages"]:
                pending.discard(actor)
        return not pending

    wait_for(taken_over, SLACK_SECONDS, "every moved actor to answer on replica 1", POLL_SECONDS)
    takeover = time.monotonic() - killed
    expiries = {actor: client.get(f"/chat/{actor}/expiry").json()["expires_at"] for actor in moved}
    for actor in set(actors) - moved:
        expiries[f"stayed:{actor}"] = client.get(f"/chat/{actor}/expiry").json()["expires_at"]
    restarted = time.time()
    stack.stop_instance(second)
    stack.start_instance(second)
    wait_for_dissemination(timeline, restarted, REPLICAS)
    return takeover, expiries


def reminder_lateness(timeline: Timeline, expiries: dict[str, str]) -> tuple[list, list]:
    """(lateness of moved actors' reminders, of those that stayed), in seconds after due."""

    def fired() -> dict[str, float] | None:
        found = {
            m["id"]: at
            for at, _, line in timeline.since(0)
            if (m := loglines.app_message("reminder fired", line))
        }
        wanted = {key.removeprefix("stayed:") for key in expiries}
        return found if wanted <= set(found) else None

    fired_at = wait_for(fired, HISTORY_TTL_SECONDS + SLACK_SECONDS, "every reminder to fire")
    moved, stayed = [], []
    for key, expires_at in expiries.items():
        actor = key.removeprefix("stayed:")
        due = datetime.strptime(expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        (stayed if key.startswith("stayed:") else moved).append(fired_at[actor] - due)
    return moved, stayed


def main() -> None:
    runtime = choose_runtime(build=False, say=print)
    timeline = Timeline()
    with tempfile.TemporaryDirectory(prefix="daprlab-bench-") as scratch:
        config = StackConfig(
            STEP,
            Path(scratch),
            instance_ports=[InstancePorts.free() for _ in range(REPLICAS)],
            app_env={"HISTORY_TTL_SECONDS": str(HISTORY_TTL_SECONDS)},
        )
        stack = Stack(config, runtime, timeline.sink)
        stack.start()
        try:
            wait_for_dissemination(timeline, 0, REPLICAS)
            with httpx.Client(base_url=stack.app_url, timeout=SLACK_SECONDS) as client:
                normal, paused = pause_delay(stack, client)
                print(f"chat latency: {normal * 1000:.0f} ms normally")
                print(
                    f"chat sent as Redis froze for {PAUSE_SECONDS} s: "
                    + ", ".join(f"{t:.2f} s" for t in paused)
                    + f" (median {statistics.median(paused):.2f} s, "
                    f"{statistics.median(paused) - normal:.2f} s added)"
                )
                takeovers, first_expiries = [], {}
                for number in range(ROUNDS):
                    takeover, expiries = failover_round(stack, client, timeline, number)
                    takeovers.append(takeover)
                    first_expiries = first_expiries or expiries
                print(
                    "takeover of a killed replica's actors: "
                    + ", ".join(f"{t:.2f} s" for t in takeovers)
                    + f" (median {statistics.median(takeovers):.2f} s of {ROUNDS})"
                )
                moved, stayed = reminder_lateness(timeline, first_expiries)
                print(
                    f"reminder fired after its due second: moved actors median "
                    f"{statistics.median(moved):.2f} s (max {max(moved):.2f} s, n={len(moved)}); "
                    f"actors that stayed median {statistics.median(stayed):.2f} s "
                    f"(max {max(stayed):.2f} s, n={len(stayed)})"
                )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
