"""The bench's report: one markdown table, a column per target, medians over the rounds."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from daprlab.bench.measurements import (
    CHAT_STEP,
    MEMORY_WARMUP_ACTORS,
    REMINDER_ACTORS,
    REMINDER_STEP,
    TIMER_ACTORS,
    TIMER_STEP,
)
from daprlab.bench.wrk_driver import Run

# The columns, in order: the floor, the lab's app (its keep-alive session to daprd; Redis
# fsync-always, the default), the same app on Redis' old setting (snapshots, no fsync), the same
# app with the SDK's defaults (a new session per call to daprd), and a new actor per chat.
TARGET_TITLES = {
    "floor": "floor",
    "warm": "warm actor",
    "snapshots": "warm, Redis snapshots",
    "sdk": "warm, SDK defaults",
    "new": "new actor",
}


def med(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def paired(
    runs: list[Run],
    metric: Callable[[Run], float],
    concurrency: int,
    target: str = "warm",
    base: str = "floor",
) -> float:
    """The median over rounds of target / base, each round's pair measured in that round."""
    by_round: dict[int, dict[str, Run]] = {}
    for run in runs:
        if run.concurrency == concurrency:
            by_round.setdefault(run.round, {})[run.target] = run
    return statistics.median(
        metric(pair[target]) / metric(pair[base]) for pair in by_round.values()
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


def table(runs: list[Run], measured: tuple[str, ...]) -> list[str]:
    """One markdown table: a column per target, medians over the rounds; NOT_MEASURED in the
    columns of targets this run left out."""
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
            cells.append(show(chosen) if chosen and name in measured else NOT_MEASURED)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def memory_lines(mem: dict[str, float]) -> list[str]:
    return [
        f"memory per active actor ({mem['actors']} actors after "
        f"{MEMORY_WARMUP_ACTORS} warm-up, RSS): app {mem['app_kib']:.2f} KiB + "
        f"daprd {mem['daprd_kib']:.2f} KiB = "
        f"{mem['app_kib'] + mem['daprd_kib']:.2f} KiB",
        f"after their idle deactivation (all 0 active): app RSS "
        f"{mem['app_after_mib']:+.2f} MiB, daprd {mem['daprd_after_mib']:+.2f} MiB",
    ]


def lateness_lines(late: dict[str, float]) -> list[str]:
    return [
        f"timer ticks late ({late['ticks']:.0f} ticks, {TIMER_ACTORS} actors, "
        f"{TIMER_STEP}, chats at 16 meanwhile): p50 {late['tick_p50']:.1f} ms, "
        f"p99 {late['tick_p99']:.1f} ms",
        f"reminder fires late ({REMINDER_ACTORS} one-shot, {REMINDER_STEP}, "
        f"from the message's send time): p50 {late['fire_p50']:.0f} ms, "
        f"max {late['fire_max']:.0f} ms",
    ]


def cold_start_line(cold: list[float]) -> str:
    return (
        f"cold start, stack start to ready ({CHAT_STEP}): median "
        f"{statistics.median(cold):.2f} s ({min(cold):.2f}-{max(cold):.2f})"
    )


def ratio_lines(runs: list[Run], measured: tuple[str, ...]) -> list[str]:
    """The comparisons in words; the last line is the chat-vs-floor summary."""
    lines = []
    if "snapshots" in measured:
        p50 = paired(runs, lambda r: r.p50, 1, "warm", "snapshots")
        rate = paired(runs, lambda r: r.rate, 16, "warm", "snapshots")
        lines.append(
            "what durability costs: Redis fsync-always (the default: every answered write on "
            "disk) vs snapshots (the old setting: a snapshot at most once a second, no fsync): "
            f"p50 x{p50:.2f}, throughput x{rate:.2f}"
        )
    if "sdk" in measured:
        p50 = paired(runs, lambda r: r.p50, 1, "sdk", "warm")
        rate = paired(runs, lambda r: r.rate, 16, "sdk", "warm")
        lines.append(
            f"SDK defaults (a new session per call to daprd) vs the lab's keep-alive session: "
            f"p50 x{p50:.2f}, throughput x{rate:.2f}"
        )
    p50_ratio = paired(runs, lambda r: r.p50, 1)
    rate_ratio = paired(runs, lambda r: r.rate, 16)
    lines.append(f"chat vs floor: p50 x{p50_ratio:.2f}, throughput x{rate_ratio:.2f}")
    return lines
