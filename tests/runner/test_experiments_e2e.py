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
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daprlab.harness import require_local_model
from daprlab.paths import REPO_ROOT, STATE_DIR_ENV
from daprlab.runtime import Runtime
from daprlab.stack.process import process_gone
from daprlab.wait import wait_for
from tests.support import readme_check, walkthrough
from tests.support.up_process import SHUTDOWN_SECONDS, Runner

pytestmark = pytest.mark.e2e
GUIDE = REPO_ROOT / "EXPERIMENTS.md"
EXPERIMENTS = readme_check.experiments(GUIDE.read_text())
STARTUP_SECONDS = 120
# The slowest command reads 1,000 histories; on a busy 2-core machine it takes half a minute.
COMMAND_TIMEOUT_SECONDS = 120
LOG_TIMEOUT_SECONDS = 15
GUIDE_APP_PORT, GUIDE_SIDECAR_PORT = 8000, 3500
APP_PORTS = re.compile(r"API docs\s+http://127\.0\.0\.1:(\d+)/docs")
SIDECAR_PORTS = re.compile(r"sidecar\s+http://127\.0\.0\.1:(\d+)/v1\.0/metadata")


def slug(title: str) -> str:
    return re.sub(r"\W+", "_", title.lower()).strip("_")


@dataclass
class Terminals:
    state_dir: Path
    cwd: Path
    runs: list[Runner] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO_ROOT), STATE_DIR_ENV: str(self.state_dir)}

    def up(self, start: readme_check.Start) -> None:
        """Ctrl-C the running `daprlab up`, if any, and start the next one as the guide says."""
        self.stop()
        run = Runner.start(
            [start.step, *start.options, "--free-ports"],
            cwd=self.cwd,
            state_dir=self.state_dir,
            env={STATE_DIR_ENV: str(self.state_dir), **start.env},
        )
        self.runs.append(run)
        run.wait_ready(STARTUP_SECONDS)
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
        try:
            assert run.interrupt(SHUTDOWN_SECONDS) == 130
        finally:
            if run.proc.poll() is None:
                run.kill_everything()
        run.keep_logs()
        assert run.pids(), "\n".join(run.lines)
        for pid in run.pids():
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
    if any("--model" in step.options for step in steps if isinstance(step, readme_check.Start)):
        require_local_model(title)
    walkthrough.play(steps, terminals.up, terminals.run)
    assert terminals.runs, f"{title} never starts the runner"
    for block in readme_check.log_blocks(text, level=3, version=version):
        whole = block.process == readme_check.APP_LOG
        wait_for(
            lambda: any(
                readme_check.in_order(block.lines, run.logs(block.process), whole, block.varies)  # noqa: B023
                for run in terminals.runs
            ),
            LOG_TIMEOUT_SECONDS,
            f"these lines, in order, in one {block.process} log of {title}: {block.lines}",
        )
