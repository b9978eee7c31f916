"""What the console page shows, kept up to date from log lines and polls (thread-safe).

Log lines arrive on the stack's reader threads, polls on the console's event loop; every change
bumps a version, and the page gets the actors and events newer than the ones it has.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from daprlab.loglines import LogEvent, Unparsed, parse_app_line, parse_daprd_line

EVENTS_KEPT = 1000
# The active-count chart covers this many seconds, one sample per successful metadata read.
SERIES_SECONDS = 300
# One chart point per this many seconds (a newer read in the same second replaces the last).
SERIES_STEP_SECONDS = 1.0
APP_SOURCES = "app"
DAPRD_SOURCES = "daprd"


@dataclass
class StepSettings:
    """The step's timing settings the page needs (its env or the defaults of its main.py)."""

    timer_period: int | None = None
    timer_ttl: int | None = None
    idle_timeouts: dict[str, int] = field(default_factory=dict)


@dataclass
class ActorRow:
    type: str
    id: str
    active: bool | None = None  # None: seen only in Redis or a request, never (de)activated
    messages: int | None = None
    last_used_at: float | None = None  # epoch seconds of its last logged use
    ticks: int = 0
    timer_ends_at: float | None = None  # epoch seconds of the timer's last tick
    timer_stopped: bool = False
    reminder: str | None = None  # armed, fired, stale, cancelled, gone
    reminder_due_at: float | None = None
    follow_up: str | None = None  # re-entered, deadlocked
    follow_up_at: float | None = None
    # A deadlocked chain's call-back still comes, late, once the caller gave up: not a re-entry.
    late_call_back_due: bool = False
    idle_deadline_at: float | None = None
    version: int = 0


@dataclass
class Event:
    seq: int
    at: float
    kind: str
    source: str
    actor: str | None
    text: str


@dataclass
class SourceHealth:
    """One part the console reads from: is it answering, since when, and why not."""

    name: str
    ok: bool | None = None
    detail: str = ""
    since: float = 0.0
    last_ok_at: float | None = None


def last_tick_at(registered_at: float, period: int, ttl: int) -> float:
    """When a timer registered at `registered_at` ticks for the last time (daprd 1.14's rules,
    the same as step 01's main.py: first tick on a whole second, TTL / period ticks rounded up)."""
    first_tick = math.floor(registered_at + period)
    return first_tick + (math.ceil(ttl / period) - 1) * period


class ConsoleState:
    def __init__(self, step: str, settings: StepSettings, clock: Callable[[], float] = time.time):
        self.step = step
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._version = 0
        self._seq = 0
        self.actors: dict[tuple[str, str], ActorRow] = {}
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self.unparsed = 0
        self.lines_read = 0
        self.processes: dict[str, bool] = {}
        self.dapr_version = ""
        self.placement = ""
        self.active_counts: dict[str, int] = {}
        self.counts_read_at: float | None = None
        self.series: dict[str, deque[tuple[float, int]]] = {}
        self.metrics: dict[str, dict[str, float]] = {}
        self.reentrancy: dict[str, str] = {}
        self.sources: dict[str, SourceHealth] = {}
        self._listeners: list[Callable[[], None]] = []

    # ---- change notification ---------------------------------------------------------------
    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        self._version += 1
        for listener in self._listeners:
            listener()

    @property
    def version(self) -> int:
        return self._version

    # ---- inputs ----------------------------------------------------------------------------
    def feed(self, source: str, line: str) -> None:
        """One log line from the stack (a LineSink): the app's and daprd's become events."""
        parse = (
            parse_app_line
            if source.startswith(APP_SOURCES)
            else parse_daprd_line
            if source.startswith(DAPRD_SOURCES)
            else None
        )
        if parse is None:
            return
        with self._lock:
            self.lines_read += 1
            try:
                event = parse(source, line)
            except Unparsed:
                self.unparsed += 1
                self._changed()
                return
            if event is not None:
                self._apply(event)
                self._changed()

    def _row(self, actor: tuple[str, str]) -> ActorRow:
        row = self.actors.get(actor)
        if row is None:
            row = self.actors[actor] = ActorRow(*actor)
        return row

    def _event(self, kind: str, source: str, actor: tuple[str, str] | None, text: str) -> None:
        self._seq += 1
        name = f"{actor[0]} {actor[1]}" if actor else None
        self.events.append(Event(self._seq, self.clock(), kind, source, name, text))

    def _touch(self, row: ActorRow, now: float) -> None:
        row.last_used_at = now
        idle = self.settings.idle_timeouts.get(row.type)
        row.idle_deadline_at = now + idle if idle and row.active else None

    def _apply(self, event: LogEvent) -> None:
        now = self.clock()
        self._event(event.kind, event.source, event.actor, event.text)
        if event.kind == "reentrancy":
            self.reentrancy[event.fields.get("type", "")] = event.text
        if event.actor is None:
            return
        row = self._row(event.actor)
        kind, values = event.kind, event.fields
        if kind == "activated":
            row.active, row.ticks, row.timer_stopped = True, 0, False
        elif kind == "deactivated":
            # A timer does not outlive its activation: daprd drops it at its next tick.
            row.active, row.timer_ends_at, row.idle_deadline_at = False, None, None
            row.version = self._version + 1
            return
        elif kind == "message recorded":
            row.active, row.messages = True, int(values["index"]) + 1
            settings = self.settings
            if settings.timer_period and settings.timer_ttl:
                row.timer_ends_at = last_tick_at(now, settings.timer_period, settings.timer_ttl)
                row.timer_stopped = False
        elif kind == "timer tick":
            row.active, row.ticks, row.messages = True, int(values["tick"]), int(values["messages"])
        elif kind == "timer stopped":
            row.timer_stopped, row.timer_ends_at = True, None
        elif kind == "reminder fired":
            row.reminder, row.reminder_due_at, row.messages = "fired", None, 0
        elif kind == "reminder stale":
            row.reminder = "stale"
        elif kind == "reminder cancelled":
            row.reminder, row.reminder_due_at = "cancelled", None
        elif kind == "follow-up call-back":
            row.follow_up, row.follow_up_at = "re-entered", now
            chat = self._row((values["target_type"], values["target_id"]))
            if chat.late_call_back_due:
                chat.late_call_back_due = False
                row.follow_up = "deadlocked"
            else:
                chat.follow_up, chat.follow_up_at = "re-entered", now
            chat.version = self._version + 1
        elif kind == "deadlock":
            row.follow_up, row.follow_up_at, row.late_call_back_due = "deadlocked", now, True
        if kind in (
            "activated",
            "message recorded",
            "message repeated",
            "timer tick",
            "follow-up call-back",
        ):
            self._touch(row, now)
        row.version = self._version + 1

    def set_processes(self, processes: dict[str, bool]) -> None:
        """Which processes are up; one that went missing counts as down."""
        with self._lock:
            merged = {name: False for name in self.processes} | processes
            if merged == self.processes:
                return
            for name, up in merged.items():
                before = self.processes.get(name)
                if before is not None and before != up:
                    self._event(f"process {'up again' if up else 'down'}", name, None, name)
            self.processes = merged
            self._changed()

    def set_source(self, name: str, ok: bool, detail: str = "") -> None:
        """Whether a read from one part worked; a change is an event (outage, recovery)."""
        with self._lock:
            now = self.clock()
            health = self.sources.get(name)
            if health is None:
                health = self.sources[name] = SourceHealth(name, None, "", now)
            if ok:
                health.last_ok_at = now
            if health.ok == ok and health.detail == detail:
                return
            if health.ok is not None and health.ok != ok:
                kind = "source up again" if ok else "source down"
                self._event(kind, name, None, detail or f"{name} answers again")
            health.ok, health.detail, health.since = ok, detail, now
            self._changed()

    def set_metadata(self, counts: dict[str, int], dapr_version: str, placement: str) -> None:
        """Active actors per type from a metadata read that worked (a failed one keeps them)."""
        with self._lock:
            now = self.clock()
            for actor_type in set(counts) | set(self.active_counts):
                series = self.series.setdefault(actor_type, deque())
                point = (now, counts.get(actor_type, 0))
                if series and now - series[-1][0] < SERIES_STEP_SECONDS:
                    series[-1] = (series[-1][0], point[1])
                else:
                    series.append(point)
                while series and series[0][0] < now - SERIES_SECONDS:
                    series.popleft()
            self.active_counts = {t: counts.get(t, 0) for t in self.series}
            self.counts_read_at = now
            self.dapr_version, self.placement = dapr_version, placement
            self._changed()

    def set_metrics(self, metrics: dict[str, dict[str, float]]) -> None:
        with self._lock:
            if metrics != self.metrics:
                self.metrics = metrics
                self._changed()

    def set_reminders(self, reminders: dict[tuple[str, str], float]) -> None:
        """The reminders daprd keeps in Redis: (type, id) -> due time (epoch seconds).

        A new due time is an armed reminder; one that left Redis fired or was cancelled (the
        app's log line says which).
        """
        with self._lock:
            changed = False
            for actor, due in reminders.items():
                row = self._row(actor)
                if row.reminder == "armed" and row.reminder_due_at == due:
                    continue
                self._event("reminder armed", "redis", actor, f"due at {format_time(due)}")
                row.reminder, row.reminder_due_at = "armed", due
                row.version = self._version + 1
                changed = True
            for actor, row in self.actors.items():
                if row.reminder == "armed" and actor not in reminders:
                    row.reminder, row.reminder_due_at = "gone", None
                    row.version = self._version + 1
                    changed = True
            if changed:
                self._changed()

    # ---- outputs ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": self.clock(),
                "step": self.step,
                "version": self._version,
                "dapr_version": self.dapr_version,
                "placement": self.placement,
                "processes": dict(self.processes),
                "active_counts": dict(self.active_counts),
                "counts_read_at": self.counts_read_at,
                "series": {t: list(s) for t, s in self.series.items()},
                "metrics": self.metrics,
                "reentrancy": dict(self.reentrancy),
                "sources": {n: asdict(h) for n, h in self.sources.items()},
                "unparsed": self.unparsed,
                "lines_read": self.lines_read,
                "actors_seen": len(self.actors),
            }

    def actors_since(self, version: int) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(row) for row in self.actors.values() if row.version > version]

    def events_since(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(event) for event in self.events if event.seq > seq]


def format_time(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))
