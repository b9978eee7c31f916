"""Which output lines `daprlab up` shows by default; `--verbose` shows them all.

Shown: the runner's own lines, every app line except the access lines of daprd's health checks
(`GET /healthz`, every few seconds, forever), and the lines of daprd, placement, scheduler and
Redis at warning level and above, but for the few warnings that every local start gives
(EXPECTED_WARNINGS) and with the daprd info lines a step README quotes (DAPRD_LINES_TAUGHT).
Every line goes to the process's log file either way.
"""

from __future__ import annotations

import re

APP = "app"
REDIS = "redis"
DAPR_PROCESSES = ("daprd", "placement", "scheduler")
# The local model server (llama.cpp) prints its whole load and each request's timings: the
# quiet view shows its errors only.
MODEL = "model"
MODEL_TROUBLE = re.compile(r"error|Traceback|failed", re.I)
# Dapr's logger (logfmt) and the scheduler's embedded etcd (zap JSON) name their levels so.
SHOWN_LEVELS = frozenset({"warning", "warn", "error", "fatal", "panic", "dpanic"})
LOGFMT_LEVEL = re.compile(r"(?:^|\s)level=\"?(\w+)")
JSON_LEVEL = re.compile(r"^\{.*\"level\"\s*:\s*\"(\w+)\"")
# Redis: "PID:ROLE DD Mon YYYY HH:MM:SS.mmm L message", L one of . - * # (debug ... warning).
REDIS_LINE = re.compile(r"^\d+:[XCSM] \d\d \w{3} \d{4} [\d:.]+ ([.\-*#]) (.*)$")
REDIS_WARNING = "#"
# Redis logs its start banner at warning level, so that every verbosity shows it: not a warning.
REDIS_START_BANNER = (
    "oO0OoO0OoO0Oo Redis is starting",
    "Redis version=",
    "Configuration loaded",
    "Server initialized",
)
# Warnings that every run of the local lab gives at start and that ask for nothing: shown, they
# would bury the lesson. Each is in its process's log file.
EXPECTED_WARNINGS = (
    "mTLS is disabled",  # the local runner starts no Sentry; Kubernetes keeps mTLS on
    "not recommended for production",  # the scheduler's one-node etcd on loopback
    "simple token is not cryptographically signed",  # etcd's auth, unused on loopback
    "quota exceeds the maximum value",  # Dapr's default etcd quota, above etcd's own maximum
    "increasedCardinality' will change",  # a 1.14 metrics notice; the lab disables metrics
    # 1.16 and later (seen on 1.18.3): daprd and the scheduler wait for their own shutdown, and
    # the scheduler's etcd takes requests above etcd's recommended size.
    "Graceful shutdown timeout is infinite",
    "exceeded recommended request limit",
)
# Lines with no level that a local start gives: the scheduler's cron library (1.16 and later)
# prints this each time a daprd reconnects its stream, as every daprd does once at start.
EXPECTED_UNLEVELED = ("Marking prefixes as undeliverable",)
HEALTH_CHECK_ACCESS = re.compile(r"\"GET /healthz(?:\?\S*)? HTTP/[\d.]+\"")
# daprd info lines that a step README quotes (step 04: the idle timeout daprd read).
DAPRD_LINES_TAUGHT = ("Actor runtime started",)
_INSTANCE_SUFFIX = re.compile(r"-\d+$")


def process_kind(name: str) -> str:
    """ "daprd-2" -> "daprd": the second instance's processes are filtered as the first's."""
    return _INSTANCE_SUFFIX.sub("", name)


def dapr_level(line: str) -> str | None:
    """The level of a daprd, placement or scheduler line, lowercase; None when it names none."""
    match = JSON_LEVEL.match(line) or LOGFMT_LEVEL.search(line)
    return match.group(1).lower() if match else None


def redis_shown(line: str) -> bool:
    match = REDIS_LINE.match(line)
    if match is None:
        return True  # not a log line (an error before logging starts): show it
    level, message = match.groups()
    return level == REDIS_WARNING and not message.startswith(REDIS_START_BANNER)


def shown_by_default(process: str, line: str) -> bool:
    """Whether the default (quiet) view prints this line of `process`."""
    kind = process_kind(process)
    if kind == APP:
        return HEALTH_CHECK_ACCESS.search(line) is None
    if kind == REDIS:
        return redis_shown(line)
    if kind == MODEL:
        return MODEL_TROUBLE.search(line) is not None
    if kind in DAPR_PROCESSES:
        level = dapr_level(line)
        if level is None:
            # Not a log line: a panic, or a usage message before the logger runs.
            return not any(known in line for known in EXPECTED_UNLEVELED)
        if kind == "daprd" and any(taught in line for taught in DAPRD_LINES_TAUGHT):
            return True
        return level in SHOWN_LEVELS and not any(known in line for known in EXPECTED_WARNINGS)
    return True  # the runner's own lines, and any process the view does not know
