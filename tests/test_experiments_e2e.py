"""EXPERIMENTS.md, played as a learner with two terminals plays it: every output compared.

The first terminal is the real runner, `daprlab up ...` with the guide's options, in the
background (on free ports, in the test's own state directory); the second is bash, running the
guide's commands with `daprlab fault` and `daprlab where` talking to that runner. Ports are
rewritten from the guide's (8000 + replica, 3500 + replica) to the run's. After each runner
stops, every process it started must be gone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daprlab.paths import REPO_ROOT, STATE_DIR_ENV
from daprlab.runtime import Runtime
from daprlab.stack.process import process_gone
from daprlab.stack.stack import LOG_DIR_NAME, LOG_SUFFIX
from daprlab.wait import wait_for
from tests import readme_check, walkthrough

pytestmark = pytest.mark.e2e
GUIDE = REPO_ROOT / "EXPERIMENTS.md"
EXPERIMENTS = readme_check.experiments(GUIDE.read_text())
STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 30
# The slowest command reads 1,000 histories; on a busy 2-core machine it takes half a minute.
COMMAND_TIMEOUT_SECONDS = 120
LOG_TIMEOUT_SECONDS = 15
GUIDE_APP_PORT, GUIDE_SIDECAR_PORT = 8000, 3500
APP_PORTS = re.compile(r"API docs\s+http://127\.0\.0\.1:(\d+)/docs")
SIDECAR_PORTS = re.compile(r"sidecar\s+http://127\.0\.0\.1:(\d+)/v1\.0/metadata")
READY = re.compile(r"^daprlab\s*\| (\S+) ready \(pid (\d+)\)")


def slug(title: str) -> str:
    return re.sub(r"\W+", "_", title.lower()).strip("_")


@dataclass
class Run:
    """One `daprlab up` in the first terminal, and everything it printed."""

    proc: subprocess.Popen[str]
    log_dir: Path
    lines: list[str] = field(default_factory=list)
    # Each process's log file as it was when the run stopped (the next run starts new ones).
    kept_logs: dict[str, list[str]] = field(default_factory=dict)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def logs(self, process: str) -> list[str]:
        if process in self.kept_logs:
            return self.kept_logs[process]
        log_file = self.log_dir / f"{process}{LOG_SUFFIX}"
        return log_file.read_text().splitlines() if log_file.is_file() else []

    def keep_logs(self) -> None:
        for log_file in self.log_dir.glob(f"*{LOG_SUFFIX}"):
            process = log_file.name.removesuffix(LOG_SUFFIX)
            self.kept_logs[process] = log_file.read_text().splitlines()

    def children(self) -> list[int]:
        """Every process it started, from its "NAME ready (pid N)" lines."""
        return [int(m.group(2)) for line in list(self.lines) if (m := READY.match(line))]


@dataclass
class Terminals:
    state_dir: Path
    cwd: Path
    runs: list[Run] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO_ROOT), STATE_DIR_ENV: str(self.state_dir)}

    def up(self, start: readme_check.Start) -> None:
        """Ctrl-C the running `daprlab up`, if any, and start the next one as the guide says."""
        self.stop()
        argv = [sys.executable, "-m", "daprlab", "up", start.step, *start.options, "--free-ports"]
        proc = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env={**self.env, **start.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C meant for pytest does not reach it
        )
        run = Run(proc, self.state_dir / LOG_DIR_NAME)
        self.runs.append(run)
        threading.Thread(target=run.read, daemon=True).start()
        wait_for(
            lambda: any("press Ctrl-C" in line for line in run.lines) or proc.poll() is not None,
            STARTUP_SECONDS,
            f"`{' '.join(argv)}` to be ready",
        )
        assert proc.poll() is None, "\n".join(run.lines)
        text = "\n".join(run.lines)
        apps, sidecars = APP_PORTS.findall(text), SIDECAR_PORTS.findall(text)
        self.ports = {GUIDE_APP_PORT + i: int(port) for i, port in enumerate(apps)}
        self.ports |= {GUIDE_SIDECAR_PORT + i: int(port) for i, port in enumerate(sidecars)}

    def run(self, command: str) -> str:
        """A command of the second terminal, on this run's ports."""
        command = command.replace("uv run daprlab", f"{sys.executable} -m daprlab")
        command = re.sub(
            r"localhost:(\d+)",
            lambda m: f"localhost:{self.ports.get(int(m[1]), int(m[1]))}",
            command,
        )
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        assert done.returncode == 0, (
            f"{command}\nexit {done.returncode}: {done.stdout}{done.stderr}"
        )
        return done.stdout

    def stop(self) -> None:
        """Ctrl-C the running `daprlab up`; everything it ever started must be gone."""
        if not self.runs or self.runs[-1].proc.poll() is not None:
            return
        run = self.runs[-1]
        run.proc.send_signal(signal.SIGINT)
        try:
            assert run.proc.wait(timeout=SHUTDOWN_SECONDS) == 130
        finally:
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
        run.keep_logs()
        assert run.children(), "\n".join(run.lines)
        for pid in run.children():
            wait_for(lambda pid=pid: process_gone(pid), SHUTDOWN_SECONDS, f"pid {pid} to exit")


@pytest.fixture
def terminals(tmp_path: Path, dapr_runtime: Runtime) -> Iterator[Terminals]:
    cwd = tmp_path / "home"
    cwd.mkdir()
    machine = Terminals(tmp_path / "lab", cwd)
    try:
        yield machine
    finally:
        machine.stop()
        for number, run in enumerate(machine.runs, 1):
            print(f"\n===== output of daprlab up number {number} =====")
            print("\n".join(run.lines))


@pytest.mark.parametrize("title", list(EXPERIMENTS), ids=slug)
def test_experiment_walkthrough(terminals: Terminals, title: str, dapr_runtime: Runtime) -> None:
    text = EXPERIMENTS[title]
    # The runner takes the same runtime (DAPR_LAB_RUNTIME); the guide's forms for its release.
    version = dapr_runtime.version
    steps = readme_check.walkthrough(text, level=3, version=version)
    walkthrough.play(steps, terminals.up, terminals.run)
    assert terminals.runs, f"{title} never starts the runner"
    for block in readme_check.log_blocks(text, level=3, version=version):
        whole = block.process == readme_check.APP_LOG
        wait_for(
            lambda: any(
                readme_check.in_order(block.lines, run.logs(block.process), whole)  # noqa: B023
                for run in terminals.runs
            ),
            LOG_TIMEOUT_SECONDS,
            f"these lines, in order, in one {block.process} log of {title}: {block.lines}",
        )
