"""The one wrapper around a `daprlab up` process, as a learner's first terminal runs it.

`Runner.start()` starts it in a subprocess (its own session, so a Ctrl-C meant for pytest does
not reach it) and keeps every line it prints; `wait_ready()` waits for its "press Ctrl-C" line;
`interrupt()` is the learner's Ctrl-C; `kill_everything()` cleans up after a runner that ignored
it. `run_up()` does all of that around a `with` block (tests/runner/test_runner_e2e.py,
tests/runner/test_control_e2e.py); tests/runner/test_experiments_e2e.py starts one runner after
another, as EXPERIMENTS.md says.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from daprlab.paths import REPO_ROOT
from daprlab.stack.stack import LOG_DIR_NAME, LOG_SUFFIX
from daprlab.wait import wait_for

STARTUP_SECONDS = 90
SHUTDOWN_SECONDS = 30
BANNER_END = r"daprlab\s*\| press Ctrl-C to stop everything"
READY = re.compile(r"daprlab\s*\| (\S+) ready \(pid (\d+)\)")


@dataclass
class Runner:
    """One `daprlab up` in a subprocess, and everything it printed."""

    proc: subprocess.Popen[str]
    log_dir: Path
    lines: list[str] = field(default_factory=list)
    # Each process's log file as it was when the run stopped (the next run starts new ones).
    kept_logs: dict[str, list[str]] = field(default_factory=dict)
    reader: threading.Thread | None = None
    command: str = "daprlab up"

    @classmethod
    def start(
        cls,
        args: Sequence[str],
        *,
        cwd: Path,
        state_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> Runner:
        """`daprlab up ARGS` from `cwd`, its output read in the background; `state_dir` is the
        state folder that ARGS or `env` give it (its logs are read from there)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "daprlab", "up", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
            start_new_session=True,  # a Ctrl-C meant for pytest does not reach it
        )
        runner = cls(proc, state_dir / LOG_DIR_NAME, command=shlex.join(["daprlab", "up", *args]))
        runner.reader = threading.Thread(target=runner.read, daemon=True)
        runner.reader.start()
        return runner

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self, seconds: float = STARTUP_SECONDS) -> None:
        """Until its ready banner is out; it must still be running then."""
        wait_for(
            lambda: self.find(BANNER_END) or self.proc.poll() is not None,
            seconds,
            f"`{self.command}` to be ready",
        )
        assert self.proc.poll() is None, "\n".join(self.lines)

    def find(self, pattern: str) -> re.Match[str] | None:
        regex = re.compile(pattern)
        return next((m for line in list(self.lines) if (m := regex.search(line))), None)

    def children(self) -> dict[str, int]:
        """The runner's child processes, by name, from its "NAME ready (pid N): ..." lines."""
        return {
            m.group(1): int(m.group(2)) for line in list(self.lines) if (m := READY.search(line))
        }

    def pids(self) -> list[int]:
        """Every process it started, from its "NAME ready (pid N)" lines."""
        return [int(m.group(2)) for line in list(self.lines) if (m := READY.search(line))]

    def logs(self, process: str) -> list[str]:
        """The lines of a process's log file (as kept when the run stopped, once it has)."""
        if process in self.kept_logs:
            return self.kept_logs[process]
        log_file = self.log_dir / f"{process}{LOG_SUFFIX}"
        return log_file.read_text().splitlines() if log_file.is_file() else []

    def keep_logs(self) -> None:
        for log_file in self.log_dir.glob(f"*{LOG_SUFFIX}"):
            process = log_file.name.removesuffix(LOG_SUFFIX)
            self.kept_logs[process] = log_file.read_text().splitlines()

    def interrupt(self, seconds: float = SHUTDOWN_SECONDS) -> int | None:
        """Ctrl-C: its exit status, or None when it is still running `seconds` later."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill_everything(self) -> None:
        """SIGKILL a hung runner's process group and those of its children (each has its own)."""
        groups = [self.proc.pid, *self.children().values()]
        for pgid in groups:
            try:
                if os.getpgid(pgid) == pgid:  # still the leader of its group, not a reused pid
                    os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


@contextmanager
def run_up(
    state_dir: Path, *flags: str, step: str = "01_actor_timers", env: dict[str, str] | None = None
) -> Iterator[Runner]:
    """`daprlab up STEP --free-ports` in a subprocess, yielded once its ready banner is out."""
    args = [step, "--free-ports", "--state-dir", str(state_dir), *flags]
    # cwd: it works from any current directory
    running = Runner.start(args, cwd=state_dir, state_dir=state_dir, env=env)
    try:
        running.wait_ready()
        yield running
    finally:
        hung = False
        if running.proc.poll() is None and running.interrupt() is None:
            hung = True
            running.kill_everything()
        assert running.reader is not None
        running.reader.join(timeout=SHUTDOWN_SECONDS)
        print("\n".join(running.lines))
        assert not hung, (
            f"the runner ignored SIGINT for {SHUTDOWN_SECONDS}s; killed it and its children"
        )
