"""The quiet default view of `daprlab up`: what it keeps and what it leaves to the log files.

The sample lines are in the exact formats the processes of the pinned stack print (daprd,
placement and scheduler: logfmt; the scheduler's embedded etcd: JSON; Redis: its own format;
the app: uvicorn's), copied from a run of `daprlab up`.
"""

from __future__ import annotations

import pytest

from daprlab.logfilter import shown_by_default
from daprlab.paths import step_dir, steps
from tests.support import readme_check


def dapr_line(level: str, msg: str, scope: str = "dapr.runtime") -> str:
    return (
        f'time="2026-12-01T22:59:10.921172716Z" level={level} msg="{msg}" app_id=chat-agent '
        f"instance=vm scope={scope} type=log ver=1.14.4"
    )


def etcd_line(level: str, msg: str) -> str:
    return (
        f'{{"level":"{level}","ts":"2026-12-01T22:59:10.285386Z","caller":"embed/config.go:679",'
        f'"msg":"{msg}"}}'
    )


def redis_line(level: str, msg: str, role: str = "M") -> str:
    return f"29283:{role} 01 Dec 2026 22:59:10.058 {level} {msg}"


def access_line(method: str, path: str, status: str = "200 OK") -> str:
    return f'INFO:     127.0.0.1:60938 - "{method} {path} HTTP/1.1" {status}'


# What a stack prints while nobody uses it: none of it reaches the screen.
IDLE_LINES = [
    ("app", access_line("GET", "/healthz")),
    ("app-2", access_line("GET", "/healthz")),
    ("daprd", dapr_line("info", "Placement tables updated, version: 2")),
    ("daprd", dapr_line("debug", "Actor health check succeeded")),
    ("placement", dapr_line("info", "Dissemination of placement tables complete")),
    ("scheduler", etcd_line("info", "compacted revision")),
    ("scheduler", dapr_line("info", "Adding a Sidecar connection to Scheduler")),
    ("redis", redis_line("*", "1 changes in 1 seconds. Saving...")),
    ("redis", redis_line("*", "Background saving started by pid 30001")),
    ("redis", redis_line("*", "DB saved on disk", role="C")),
    ("redis", redis_line("*", "Background saving terminated with success")),
]

NOT_FOR_PRODUCTION = "This is not recommended for production."
CARDINALITY = "spec.metric.http.increasedCardinality"

# What every start prints that asks nothing of the learner.
EXPECTED_AT_START = [
    ("placement", dapr_line("warning", "mTLS is disabled. Skipping certificate request")),
    ("scheduler", dapr_line("warning", "etcd client http ports not set. " + NOT_FOR_PRODUCTION)),
    ("scheduler", etcd_line("warn", "http and grpc on one port. " + NOT_FOR_PRODUCTION)),
    ("scheduler", etcd_line("warn", "simple token is not cryptographically signed")),
    ("scheduler", etcd_line("warn", "quota exceeds the maximum value")),
    ("daprd", dapr_line("warning", f"The default of '{CARDINALITY}' will change to 'false'")),
    ("redis", redis_line("#", "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo", role="C")),
    ("redis", redis_line("#", "Redis version=7.0.15, bits=64, commit=00000000", role="C")),
    ("redis", redis_line("#", "Configuration loaded", role="C")),
    ("redis", redis_line("#", "Server initialized")),
    ("daprd", dapr_line("info", "Starting Dapr Runtime -- version 1.14.4")),
    ("app", access_line("GET", "/healthz")),
    # Seen on 1.18.3 at every local start.
    ("daprd", dapr_line("warning", "Graceful shutdown timeout is infinite, will wait")),
    ("scheduler", etcd_line("warn", "exceeded recommended request limit")),
    ("scheduler", "2026/12/06 09:44:59 Marking prefixes as undeliverable for one caller"),
]  # fmt: skip

# Warnings and errors, the app's own lines and the runner's: always shown.
SHOWN = [
    ("daprlab", "app ready (pid 123): http://127.0.0.1:8000"),
    ("app", "INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"),
    ("app", access_line("POST", "/chat/alice")),
    ("app", access_line("GET", "/dapr/config")),
    ("app", access_line("GET", "/healthz/extra", "404 Not Found")),
    ("app", "Traceback (most recent call last):"),
    ("daprd", dapr_line("warning", "Failed to connect to placement")),
    ("daprd-2", dapr_line("error", "error from actor service")),
    ("daprd", dapr_line("fatal", "Fatal error from runtime: listen tcp: address already in use")),
    ("daprd", dapr_line("info", "Actor runtime started. Idle timeout: 1h0m0s")),
    ("daprd", dapr_line("info", "Actor runtime started")),  # 1.15 and later
    ("daprd", dapr_line("warning", "drainOngoingCallTimeout (1m0s) ... clamping to 24s")),
    ("placement", dapr_line("error", "raft: failed to start")),
    ("scheduler", etcd_line("error", "failed to start etcd")),
    ("scheduler", etcd_line("warn", "slow fdatasync")),
    ("daprd", "panic: runtime error: invalid memory address or nil pointer dereference"),
    ("scheduler", "unknown flag: --initial-cluster"),
    ("redis", redis_line("#", "WARNING Memory overcommit must be enabled!")),
    ("redis", redis_line("#", "Failed opening the temp RDB file temp-1.rdb (in server root dir)")),
    ("redis", "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***"),
]


@pytest.mark.parametrize(("process", "line"), IDLE_LINES)
def test_nothing_an_idle_stack_prints_reaches_the_screen(process: str, line: str) -> None:
    assert not shown_by_default(process, line)


@pytest.mark.parametrize(("process", "line"), EXPECTED_AT_START)
def test_info_lines_and_expected_start_warnings_stay_in_the_files(process: str, line: str) -> None:
    assert not shown_by_default(process, line)


@pytest.mark.parametrize(("process", "line"), SHOWN)
def test_warnings_errors_app_and_runner_lines_are_shown(process: str, line: str) -> None:
    assert shown_by_default(process, line)


@pytest.mark.parametrize("step", steps())
def test_every_log_line_a_readme_quotes_is_in_the_default_view(step: str) -> None:
    blocks = readme_check.log_blocks((step_dir(step) / "README.md").read_text())
    assert blocks, f"{step}: no log block under 'What to look for'"
    for block in blocks:
        for quoted in block.lines:
            # An app block holds whole lines; a daprd block, text that a daprd line contains.
            line = quoted if block.process == readme_check.APP_LOG else dapr_line("info", quoted)
            assert shown_by_default(block.process, line), f"{step}: {block.process}| {line}"
