"""The log lines the lab reads, the one place that knows their shape: the app's (the console,
the bench and the tests read them), daprd's and placement's (the runner's readiness and
`daprlab where`, the bench's experiments).

tests/console/test_console_unit.py ties the app's patterns to the lines the step READMEs quote
and to the logger calls in each main.py, so renaming a line breaks a test instead of the console.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The app logs "LEVEL:     message" (logging.basicConfig in each main.py); uvicorn the same.
APP_PREFIX = re.compile(r"^(?P<level>[A-Z]+):\s+(?P<message>.*)$")
ACTOR = r"(?P<type>\w+) (?P<id>[\w-]+)"

# Each pattern matches the message part of one logger call in a step's main.py.
APP_PATTERNS: dict[str, re.Pattern[str]] = {
    "activated": re.compile(rf"^{ACTOR} activated$"),
    "deactivated": re.compile(rf"^{ACTOR} deactivated$"),
    "message recorded": re.compile(rf"^{ACTOR} recorded message (?P<index>\d+)$"),
    # A retry with the same Idempotency-Key (lab_plumbing/idempotency.py): nothing recorded.
    "message repeated": re.compile(rf"^{ACTOR} answered a repeat of message (?P<index>\d+)$"),
    "timer tick": re.compile(
        rf"^timer tick (?P<tick>\d+): {ACTOR} has (?P<messages>\d+) messages$"
    ),
    "timer stopped": re.compile(rf"^timer stopped: {ACTOR}$"),
    "reminder fired": re.compile(rf"^history expired: {ACTOR} \(reminder (?P<reminder>[\w-]+)\)$"),
    "reminder stale": re.compile(rf"^stale reminder (?P<reminder>[\w-]+) ignored: {ACTOR}$"),
    "reminder cancelled": re.compile(rf"^expiry cancelled: {ACTOR} keeps its history$"),
    "follow-up call-back": re.compile(
        rf"^{ACTOR} called back into (?P<target_type>\w+) (?P<target_id>[\w-]+): "
        r"(?P<messages>\d+) messages$"
    ),
    "deadlock": re.compile(
        rf"^deadlock: {ACTOR} waited (?P<seconds>\d+)s for (?P<other_type>\w+) "
        r"(?P<other_id>[\w-]+), which waits to re-enter .+$"
    ),
    "reentrancy": re.compile(
        r"^reentrancy for (?P<type>\w+) is (?P<enabled>on|off), maxStackDepth (?P<depth>\d+)$"
    ),
    # lab_plumbing/model.py's: each call of the model, with its time and tokens, or its failure.
    "model call": re.compile(
        rf"^model call: {ACTOR}: (?P<model>\S+) answered in (?P<ms>\d+) ms, "
        r"(?P<tokens>\d+) tokens \((?P<tokens_in>\d+) in, (?P<tokens_out>\d+) out\)$"
    ),
    "model call failed": re.compile(
        rf"^model call failed: {ACTOR}: (?P<model>\S+): (?P<reason>.+)$"
    ),
    "registered": re.compile(r"^(?P<type>\w+) registered; sidecar at (?P<sidecar>\S+)$"),
    "waiting for sidecar": re.compile(r"^no Dapr sidecar at (?P<sidecar>\S+) yet: .*$"),
}
# The app's own line for an error it answers (`error_answer` in each main.py); the console
# shows the 503 and 504 answers, and the model's 429 and 502, with the actor the error names.
ERROR_ANSWER = re.compile(r"^answered (?P<status>\d+): (?P<detail>.*)$")
ANSWER_STATUSES = {"429", "502", "503", "504"}
ACTOR_IN_DETAIL = re.compile(r"\b(?P<type>ChatAgent|QuickChatAgent|FollowUpAgent) (?P<id>[\w-]+)")
# uvicorn's access log (on only at LOG_LEVEL=DEBUG): known lines, but no events of their own.
ACCESS_LOG = re.compile(r'^[\d.:]+ - "[A-Z]+ \S+ HTTP/[\d.]+" \d{3}\b')
# uvicorn's own lines about starting and stopping: known, but no event of the lab.
UVICORN_LIFECYCLE = re.compile(
    r"^(Started server process|Waiting for application|Application (startup|shutdown)|"
    r"Uvicorn running on|Shutting down|Finished server process|Started reloader|"
    r"Will watch for changes|Stopping reloader)"
)
# daprd logs logfmt (time="..." level=info msg="..."); the console reads the level and msg.
DAPRD_LINE = re.compile(r'^time="[^"]*" level=(?P<level>\w+) msg="(?P<msg>(?:[^"\\]|\\.)*)"')


# ---- placement tables: which table a sidecar uses, and when placement sent it ------------------
# daprd's line for a table it applied differs by release: daprlab.releases (`table_applied`).
# placement logs this when each sidecar of a namespace has its table (dapr/dapr pkg/placement).
DISSEMINATED = re.compile(
    r"Completed dissemination for namespace (?P<namespace>\S*?)\. .*streams: (?P<streams>\d+)"
    r".*table generation: (?P<generation>\d+)"
)


def app_message(kind: str, line: str) -> re.Match[str] | None:
    """The match of one of the app's APP_PATTERNS against a whole app log line, if it is that
    line: how the bench and the tests find a tick, an activation or a reminder's fire."""
    prefixed = APP_PREFIX.match(line)
    return APP_PATTERNS[kind].match(prefixed["message"]) if prefixed else None


@dataclass
class LogEvent:
    """One thing a log line says happened; `actor` is (type, id) when it is about one actor."""

    kind: str
    source: str
    actor: tuple[str, str] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    text: str = ""


class Unparsed(ValueError):
    """A line the console does not know: counted, never an error on the page."""


def parse_app_line(source: str, line: str) -> LogEvent | None:
    """The event an app log line stands for; None for a known line that is no event.

    Raises Unparsed for a line of no known shape.
    """
    prefixed = APP_PREFIX.match(line)
    if prefixed is None:
        raise Unparsed(line)
    message = prefixed["message"]
    for kind, pattern in APP_PATTERNS.items():
        found = pattern.match(message)
        if found is not None:
            values = found.groupdict()
            actor = (values.pop("type"), values.pop("id")) if "id" in values else None
            return LogEvent(kind, source, actor, values, message)
    answered = ERROR_ANSWER.match(message)
    if answered is not None:
        if answered["status"] not in ANSWER_STATUSES:
            return None
        target = ACTOR_IN_DETAIL.search(answered["detail"])
        actor = (target["type"], target["id"]) if target else None
        return LogEvent(
            f"{answered['status']} answered", source, actor, answered.groupdict(), message
        )
    if ACCESS_LOG.match(message) or UVICORN_LIFECYCLE.match(message):
        return None
    raise Unparsed(line)


def parse_daprd_line(source: str, line: str) -> LogEvent | None:
    """daprd's lines are context, not events: known when logfmt-shaped; errors become events."""
    found = DAPRD_LINE.match(line)
    if found is None:
        raise Unparsed(line)
    if found["level"] in ("error", "fatal"):
        return LogEvent("sidecar error", source, None, {}, found["msg"].replace('\\"', '"'))
    return None
