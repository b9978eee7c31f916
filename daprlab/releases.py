"""What differs between the Dapr releases the lab runs on, 1.14 to 1.18: the one table.

The runner, the console and the tests ask `of(version)` for the running daprd's row instead of
testing versions themselves. Each field says where its value comes from: "seen on" a release the
lab ran (1.14.4 in CI; 1.16.5 and 1.18.3 built by hand and run), or "read" from dapr/dapr's
sources at the tags named in the lab's notes. A newer release's difference is one field here.

The scheduler's etcd flags, which changed in 1.15, stay in daprlab/scheduler_flags.py (their own
table, with their own tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from daprlab.scheduler_flags import release

# The releases the lab runs on; others are refused with this range in the message.
OLDEST_SUPPORTED = (1, 14)
NEWEST_SUPPORTED = (1, 18)


class ReminderHome(Enum):
    """Where daprd keeps an actor's reminders."""

    # A hash per actor type in the actor state store, `actors||<type>`, field "data": a JSON list.
    STATE_STORE = "the actor state store (Redis hash actors||<actor type>)"
    # The Scheduler's etcd; the state store holds none. Seen through daprd's reminder GET.
    SCHEDULER = "the Scheduler (etcd); Redis holds none"


class PendingCalls(Enum):
    """What daprd's `dapr_runtime_actor_pending_actor_calls` counts."""

    # 1.14: a count of recordings (`view.Count()` in pkg/diagnostics/service_monitoring.go), two
    # per call, that never goes down: not the calls waiting now.
    RECORDINGS = "recordings since start (not calls waiting)"
    # 1.15 on: the calls waiting for the actor's lock now; absent until the first call.
    WAITING = "calls waiting for the actor lock"


@dataclass(frozen=True)
class Release:
    """One range of releases that behave alike for the lab (see the module docstring)."""

    since: tuple[int, int]
    label: str
    # ---- readiness: daprd's line once it holds a placement table (actor calls wait until then);
    # group "version" is the table's version. 1.14-1.16 seen; 1.17 read.
    table_applied: re.Pattern[str]
    # Placement's GET /placement/state: True, per-namespace tables of hosts (`entities`) with the
    # table's version (seen on 1.18.3), and placement logs no "Completed dissemination" line;
    # False, one `hostList` (`actorTypes`), and that line says each namespace's generation (seen
    # on 1.14.4 and 1.16.5).
    placement_state_tables: bool
    # ---- reminders
    reminder_home: ReminderHome
    # The reminder GET of a reminder that is not there: status and body.
    missing_reminder_status: int
    missing_reminder_body: object
    # Keys the reminder GET adds besides dueTime/period/data/ttl (seen on 1.16.5 and 1.18.3).
    reminder_get_extra_keys: frozenset[str]
    # Registering a reminder again with an identical body: True re-schedules it from now (its due
    # time moves; read in go-etcd-cron's upsert), False changes nothing (seen on 1.14.4).
    identical_reregistration_moves_due: bool
    # REMINDERS_STORAGE_PARTITIONS spreads a type's reminders over several Redis records.
    reminder_partitions: bool
    # ---- timers: a tick due after the actor went idle. True: it re-activates the actor (seen on
    # 1.16.5 and 1.18.3). False: daprd drops it and logs `dropped_timer_line` (seen on 1.14.4).
    timer_reactivates_idle_actor: bool
    dropped_timer_line: str | None
    # ---- log lines quoted: daprd's line when the actor runtime starts; group "idle" is the idle
    # timeout when the release logs it.
    actor_runtime_started: re.Pattern[str]
    # ---- error texts
    # A call refused for maxStackDepth: the error code and the text its caller reads (the
    # message after the code).
    stack_depth_error_code: str
    stack_depth_error: str
    # After that refusal the actor stays locked: every later call waits until its caller gives
    # up, until daprd restarts (seen on 1.16.5 and 1.18.3; not on 1.14.4).
    stack_depth_refusal_leaves_actor_locked: bool
    # How daprd wraps the error body of an actor method that failed.
    actor_error_wrapping: str
    # ---- metrics
    pending_actor_calls: PendingCalls
    # daprd exports the `reminders` gauge (reminders held per type); 1.15 on: the Scheduler's.
    reminders_gauge: bool
    # ---- runtime settings: a drain timeout at or over this many seconds is clamped (None: kept).
    drain_clamped_from_seconds: float | None

    @property
    def logs_idle_timeout(self) -> bool:
        return "idle" in self.actor_runtime_started.groupindex

    @property
    def reminders_in_state_store(self) -> bool:
        return self.reminder_home is ReminderHome.STATE_STORE


_PLACEMENT_TABLES_UPDATED = re.compile(r"Placement tables updated, version: (?P<version>\d+)")
_DISSEMINATION_COMPLETE = re.compile(r"Dissemination complete for version (?P<version>\d+)")
_ERROR_FROM_ACTOR = "error invoke actor method: error from actor service: "

# Newest first: a runtime takes the row of the first range it is not older than.
RELEASES: tuple[Release, ...] = (
    Release(
        since=(1, 17),
        label="1.17-1.18",
        identical_reregistration_moves_due=True,
        table_applied=_DISSEMINATION_COMPLETE,  # seen on 1.18.3
        placement_state_tables=True,
        reminder_home=ReminderHome.SCHEDULER,  # seen on 1.18.3
        missing_reminder_status=404,  # seen on 1.18.3: ERR_ACTOR_REMINDER_NOT_FOUND
        missing_reminder_body="ERR_ACTOR_REMINDER_NOT_FOUND",
        reminder_get_extra_keys=frozenset({"actorID", "actorType"}),
        reminder_partitions=False,  # read: deprecated, only logged (1.17+)
        timer_reactivates_idle_actor=True,
        dropped_timer_line=None,
        actor_runtime_started=re.compile(r'msg="Actor runtime started"'),
        stack_depth_error_code="ERR_ACTOR_STACK_DEPTH",  # seen on 1.18.3
        stack_depth_refusal_leaves_actor_locked=True,
        stack_depth_error="maximum stack depth exceeded",
        actor_error_wrapping=f"{_ERROR_FROM_ACTOR}(500) ",
        pending_actor_calls=PendingCalls.WAITING,
        reminders_gauge=False,
        drain_clamped_from_seconds=30.0,  # seen on 1.18.3: 60 s becomes 24 s, with a warning
    ),
    Release(
        since=(1, 15),
        label="1.15-1.16",
        identical_reregistration_moves_due=True,
        table_applied=_PLACEMENT_TABLES_UPDATED,
        placement_state_tables=False,
        reminder_home=ReminderHome.SCHEDULER,  # seen on 1.16.5
        missing_reminder_status=200,  # seen on 1.16.5: an empty reminder object, {}
        missing_reminder_body={},
        reminder_get_extra_keys=frozenset({"actorID", "actorType"}),
        reminder_partitions=False,
        timer_reactivates_idle_actor=True,
        dropped_timer_line=None,
        actor_runtime_started=re.compile(r'msg="Actor runtime started"'),
        stack_depth_error_code="ERR_ACTOR_STACK_DEPTH",  # seen on 1.18.3
        stack_depth_refusal_leaves_actor_locked=True,
        stack_depth_error="maximum stack depth exceeded",
        actor_error_wrapping=f"{_ERROR_FROM_ACTOR}(500) ",
        pending_actor_calls=PendingCalls.WAITING,
        reminders_gauge=False,
        drain_clamped_from_seconds=None,  # seen on 1.16.5: 60 s accepted
    ),
    Release(
        since=OLDEST_SUPPORTED,
        label="1.14",
        identical_reregistration_moves_due=False,
        table_applied=_PLACEMENT_TABLES_UPDATED,
        placement_state_tables=False,
        reminder_home=ReminderHome.STATE_STORE,
        missing_reminder_status=200,
        missing_reminder_body=None,
        reminder_get_extra_keys=frozenset(),
        reminder_partitions=True,
        timer_reactivates_idle_actor=False,
        dropped_timer_line="Could not find active timer {actor_type}||{actor_id}||{name}",
        actor_runtime_started=re.compile(r"Actor runtime started\. Idle timeout: (?P<idle>\w+)"),
        stack_depth_error_code="ERR_ACTOR_INVOKE_METHOD",
        stack_depth_refusal_leaves_actor_locked=False,
        stack_depth_error=(
            "error invoke actor method: rpc error: code = ResourceExhausted "
            "desc = maximum stack depth exceeded"
        ),
        actor_error_wrapping=_ERROR_FROM_ACTOR,
        pending_actor_calls=PendingCalls.RECORDINGS,
        reminders_gauge=True,
        drain_clamped_from_seconds=None,
    ),
)


class UnsupportedRelease(ValueError):
    """A Dapr version outside the range the lab runs on."""


def supported_range() -> str:
    return f"{'.'.join(map(str, OLDEST_SUPPORTED))} to {'.'.join(map(str, NEWEST_SUPPORTED))}"


def is_supported(version: str) -> bool:
    try:
        have = release(version)
    except ValueError:
        return False
    return OLDEST_SUPPORTED <= have <= NEWEST_SUPPORTED


def of(version: str) -> Release:
    """The row of Dapr `version` (e.g. "1.18.3"); UnsupportedRelease outside 1.14 to 1.18."""
    if not is_supported(version):
        raise UnsupportedRelease(
            f"Dapr {version!r} is not a release the lab runs on (supported: {supported_range()})"
        )
    have = release(version)
    return next(row for row in RELEASES if have >= row.since)


def reminder_gone(rel: Release, status: int, body: object) -> bool:
    """Whether a reminder GET's answer (status, parsed JSON body) says there is no such reminder,
    as this release says it: 200 null (1.14), 200 {} (1.15-1.16), 404 ERR_ACTOR_REMINDER_NOT_FOUND
    (1.17 on)."""
    if status != rel.missing_reminder_status:
        return False
    if status == 404:
        return isinstance(body, dict) and body.get("errorCode") == rel.missing_reminder_body
    return body == rel.missing_reminder_body


def table_applied_version(rel: Release, line: str) -> int | None:
    """The version of the placement table a daprd line says is in use, if it says so."""
    found = rel.table_applied.search(line)
    return int(found["version"]) if found else None
